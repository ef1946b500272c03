"""Regenerate the README's screenshot from the demo's report: ``make docs``.

Opens ``demo/report.html`` (what ``make demo`` just wrote) in headless Chromium and
saves the top of the page as ``docs/demo-report.png``, so the picture in the README
is always the demo's own output for its fixed seed.

    python docs/screenshot.py demo/report.html docs/demo-report.png
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# No network, no first-run work: the closed network would refuse it anyway.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def main() -> int:
    """Take the screenshot; 2 when the report or a Chromium is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1700)
    args = parser.parse_args()
    browser = next((p for name in _BROWSERS if (p := shutil.which(name))), None)
    if browser is None:
        print("error: no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    if not args.report.is_file():
        print(f"error: {args.report}: not found; run make demo first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as profile:
        command = [browser, *_FLAGS, f"--user-data-dir={profile}"]
        command += [f"--window-size={args.width},{args.height}"]
        command += [f"--screenshot={args.png.resolve()}", args.report.resolve().as_uri()]
        subprocess.run(command, check=True, capture_output=True, timeout=180)  # noqa: S603
    print(f"screenshot of {args.report} → {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
