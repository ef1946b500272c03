"""The one conftest: registers the shared fixtures plugin (``tests/fixtures/``).

It also ends every run with one line per reason tests were skipped (a missing
Chromium, Java or PostgreSQL), after the summary, so a skip is never silent.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

pytest_plugins = ["tests.fixtures"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per skip reason, with how many tests it skipped."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"SKIPPED {count} test(s): {reason}", yellow=True, bold=True)
