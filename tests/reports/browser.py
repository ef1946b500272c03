"""Open a report in headless Chromium: the rendered DOM, console messages and a screenshot.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it when missing).
Console messages come from Chromium's own log (``--enable-logging=stderr``), where
every ``console.*`` call and uncaught exception appears as an ``INFO:CONSOLE`` line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


def find_chromium() -> str | None:
    """The path of a Chromium binary, or None."""
    return next((p for name in CANDIDATES if (p := shutil.which(name))), None)


@dataclass(frozen=True)
class Page:
    """What the browser made of a page."""

    dom: str
    console: list[str]
    screenshot: Path


def open_page(html: Path, screenshot: Path, *, width: int = 1280, height: int = 2400) -> Page:
    """Load ``html`` from disk, return the DOM after rendering, console lines and a PNG."""
    binary = find_chromium()
    assert binary is not None, "no Chromium"
    with tempfile.TemporaryDirectory(prefix="seglift-chromium-") as profile:
        done = subprocess.run(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={screenshot}",
                "--dump-dom",
                html.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]
    return Page(done.stdout, console, screenshot)


class Elements(HTMLParser):
    """Collect every start tag as (tag, attributes) from a DOM dump."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_id(self, prefix: str) -> list[str]:
        """Ids of elements whose id starts with ``prefix``."""
        return [i for _, a in self.tags if (i := a.get("id") or "").startswith(prefix)]
