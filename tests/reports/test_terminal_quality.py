"""The data-quality lines of ``exp analyze``: warnings first and yellow, notes after in grey."""

import io
from dataclasses import replace

from rich.console import Console  # noqa: TID251 - rendering the terminal view under test

from experiment.results import DataQuality, DataQualityCheck
from reports.terminal import quality_lines
from tests.fixtures.results import make_results


def _check(name: str, count: int, severity: str, message: str) -> DataQualityCheck:
    return DataQualityCheck(
        name=name, count=count, action="excluded", message=message, severity=severity
    )


def _rendered(lines: list[str]) -> str:
    console = Console(
        width=300, file=io.StringIO(), force_terminal=True, color_system="standard", highlight=False
    )
    for line in lines:
        console.print(line)
    out: str = console.file.getvalue()  # type: ignore[attr-defined]
    return out


def test_quality_lines_put_warnings_first_in_yellow_and_notes_after_in_grey():
    quality = DataQuality(
        checks=(
            _check("events_before_assignment", 5, "info", "5 events before assignment"),
            _check("events_outside_window", 90, "warning", "90 of 100 events outside [b]x[/b]"),
            _check("multiple_arms", 0, "warning", "nothing found"),
        )
    )
    lines = quality_lines(replace(make_results(), data_quality=quality))
    assert len(lines) == 2  # a check that found nothing prints nothing
    assert lines[0].startswith("[bold yellow]warning: 90 of 100 events outside")
    assert lines[1].startswith("[dim]data quality: 5 events before")
    text = _rendered(lines)
    first, second = text.splitlines()
    assert "\x1b[1;33m" in first  # ANSI bold yellow
    assert "[b]x[/b]" in first  # the message is text, never markup
    assert "\x1b[2m" in second  # ANSI dim


def test_data_quality_warnings_are_the_non_info_findings():
    quality = DataQuality(
        checks=(
            _check("a", 1, "info", "note"),
            _check("b", 1, "warning", "warn"),
            _check("c", 0, "warning", "none"),
            _check("d", 2, "error", "err"),
        )
    )
    assert [c.name for c in quality.warnings] == ["b", "d"]
