"""The report on a laptop: headless Chromium measures it at 1024-1440 px wide.

The report is built from simulated data with the widest tables the report draws
(3 arms, CUPED, sequential, 30 segments of every kind). A probe script, added to a
copy of the report, writes what the browser laid out into the DOM, which
``--dump-dom`` returns: the page's ``scrollWidth`` against the viewport, each
table's overflow inside its scroll box, and what sorting and filtering did.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import Elements, find_chromium, open_page
from tests.fixtures.wide_report import wide_report

pytestmark = [
    pytest.mark.slow,  # simulates and analyses 6,000 users, then launches Chromium
    pytest.mark.skipif(
        find_chromium() is None,
        reason="Chromium not installed: run .ci/run as root (apt-get install chromium) to enable",
    ),
]

# Runs after the report's own script (it is appended at the end of <body>).
_PROBE_JS = """
(function () {
  var out = {viewport: window.innerWidth, scroll_width: document.documentElement.scrollWidth,
             boxes: [], result_right: 0, sorted: [], shown: [], rows: 0};
  document.querySelectorAll(".scroll").forEach(function (box) {
    out.boxes.push({id: (box.querySelector("table") || {}).id || "",
                    overflow: box.scrollWidth - box.clientWidth});
  });
  document.querySelectorAll("table.metric td:last-child").forEach(function (td) {
    out.result_right = Math.max(out.result_right, td.getBoundingClientRect().right);
  });
  var table = document.querySelector("table.results");
  if (table) probeTable(table, out);
  var pre = document.createElement("pre"); pre.id = "layout-probe";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
function probeTable(table, out) {
  var th = Array.prototype.find.call(table.tHead.rows[0].cells, function (c) {
    return c.textContent.indexOf("Rel. lift") === 0; });
  var col = th.cellIndex;
  th.click(); th.click();  // twice: descending
  Array.prototype.forEach.call(table.tBodies[0].rows, function (tr) {
    var withheld = tr.classList.contains("suppressed");  // one cell spans the numbers
    out.sorted.push([tr.className, withheld ? "" : tr.cells[col].textContent.trim()]); });
  var box = table.closest(".scroll").previousElementSibling.querySelector("input");
  box.value = "mobile"; box.dispatchEvent(new Event("input"));
  out.rows = table.tBodies[0].rows.length;
  out.shown = Array.prototype.filter.call(table.tBodies[0].rows, function (tr) {
    return !tr.hidden; }).map(function (tr) { return tr.getAttribute("data-segment"); });
}
"""
_PROBE_HASH = base64.b64encode(hashlib.sha256(_PROBE_JS.encode()).digest()).decode()


def measure(html: Path, screenshot: Path, *, width: int) -> dict[str, Any]:
    """Open a probed copy of ``html`` at ``width`` px; what the probe measured."""
    probed = html.with_name(f"probed-{width}.html")
    page = html.read_text().replace("</body>", f"<script>{_PROBE_JS}</script></body>")
    # The report's policy allows its own script only: allow the probe by its hash too.
    page = page.replace("script-src ", f"script-src 'sha256-{_PROBE_HASH}' ", 1)
    probed.write_text(page)
    seen = open_page(probed, screenshot, width=width, height=2000)
    found = re.search(r'<pre id="layout-probe">(.*?)</pre>', seen.dom, re.S)
    assert found is not None, seen.console
    probe: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"'))
    probe["console"] = seen.console
    probe["dom"] = seen.dom
    return probe


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wide_report(tmp_path_factory.mktemp("wide"))


@pytest.mark.parametrize("width", [1024, 1100, 1440])
def test_layout_report_fits_a_laptop_screen(wide, tmp_path, width):
    probe = measure(wide, tmp_path / "shot.png", width=width)
    assert probe["console"] == []
    assert probe["viewport"] == width
    assert probe["scroll_width"] <= width
    assert [b for b in probe["boxes"] if b["overflow"] > 0] == []  # no table scrolls sideways
    assert 0 < probe["result_right"] <= width  # the verdict column is on screen


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-").rstrip("%").replace(",", ""))


def test_layout_results_table_sorts_and_filters_in_the_browser(wide, tmp_path):
    probe = measure(wide, tmp_path / "shot.png", width=1100)
    assert probe["console"] == []
    order = probe["sorted"]  # (row class, "Rel. lift" cell) after two clicks on its header
    pinned = [k for k, (cls, _) in enumerate(order) if "all" in cls.split()]
    assert pinned == list(range(len(pinned)))
    assert pinned
    lifts = [_number(v) for cls, v in order[len(pinned) :] if v not in ("", "\u2013")]
    assert len(lifts) > 30
    assert lifts == sorted(lifts, reverse=True)  # descending
    tail = [v for _, v in order[len(pinned) + len(lifts) :]]
    assert set(tail) <= {"", "\u2013"}  # withheld and undefined lifts go last
    # Filtering "mobile" keeps the mobile segments (and "all"), hides the rest.
    dom = Elements(probe["dom"])
    table = [a["data-segment"] or "" for t, a in dom.tags if t == "tr" and "data-segment" in a]
    assert 0 < len(probe["shown"]) < probe["rows"]
    assert all(name == "all" or "mobile" in name for name in probe["shown"])
    expected = {name for name in table if "mobile" in name}
    assert expected <= set(probe["shown"])


def test_layout_every_simulated_segment_is_described_as_defined(wide):
    doc = json.loads(wide.with_name("results.json").read_text())
    segments = {s["name"]: s for s in doc["segments"]}
    assert len(segments) > 30
    for name, seg in segments.items():
        assert seg["definition"], name  # every kind, not "everyone assigned"
        assert ("everyone" in seg["definition"]) == (name == "all"), name
    at_risk = segments["stage_by_device_at_risk_mobile"]
    assert at_risk["where"] == ""  # ``where`` keeps its meaning: rule segments only
    assert at_risk["definition"].startswith("lifecycle == 'at_risk' and device == 'mobile'")
    assert segments["lifecycle_vip"]["description"] == "One segment per lifecycle stage."
    clusters = [s for n, s in segments.items() if n.startswith("taste_")]
    assert clusters
    assert all("k-means cluster" in s["definition"] for s in clusters)
    page = Elements(wide.read_text())
    assert any("device == 'mobile'" in text for text in page.text)  # shown in the report
