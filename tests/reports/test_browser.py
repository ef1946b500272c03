"""The HTML report as a browser sees it: headless Chromium renders it, a screenshot is taken.

Skips only when no Chromium is installed (``.ci/run`` installs Debian's package).
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from reports.html import write_html
from tests.fixtures.browser import Elements, find_chromium, open_page
from tests.fixtures.results import make_many

pytestmark = [
    pytest.mark.slow,  # each test launches Chromium (~2 s)
    pytest.mark.skipif(
        find_chromium() is None,
        reason="Chromium not installed: run .ci/run as root (apt-get install chromium) to enable",
    ),
]

EVIL = "<script>alert(1)</script>"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_browser_detects_console_errors(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<p>x</p><script>console.error('boom'); nope();</script>")
    seen = open_page(page, tmp_path / "bad.png", height=300)
    assert any("boom" in line for line in seen.console)
    assert any("nope is not defined" in line for line in seen.console)


def test_browser_renders_report_with_one_forest_row_per_segment(tmp_path):
    results = make_many(n_segments=12, n_metrics=2)
    html = write_html(results, tmp_path / "report.html")
    seen = open_page(html, tmp_path / "report.png")
    assert seen.console == []
    dom = Elements(seen.dom)
    assert [
        a["id"] for t, a in dom.tags if t == "figure" and "forest" in (a.get("class") or "")
    ] == [
        "forest-0",
        "forest-1",
    ]
    segments = {r.segment for r in results.results}
    for k in (0, 1):
        rows = dom.with_id(f"forest-{k}-row-")
        assert len(rows) == len(segments) == 13
    width, height = _png_size(seen.screenshot)
    assert (width, height) == (1280, 2400)
    assert seen.screenshot.stat().st_size > 20_000  # a blank page compresses to ~5 kB


def test_browser_shows_evil_segment_name_as_text(tmp_path):
    base = make_many(n_segments=2, n_metrics=1, timeline=False)
    rows = tuple(replace(r, segment=EVIL) if r.segment == "segment_00" else r for r in base.results)
    html = write_html(replace(base, results=rows), tmp_path / "r.html")
    seen = open_page(html, tmp_path / "r.png", height=800)
    assert seen.console == []  # alert() never ran, no script error
    dom = Elements(seen.dom)
    assert [t for t, _ in dom.tags].count("script") == 1  # the report's own table script
    assert sum(EVIL in text for text in dom.text) >= 3  # decisions, table, forest label


def _plant_srm(dataset: Path, share: float) -> None:
    """Delete ``share`` of one treatment arm's assignments (a logging bug in one arm)."""
    import numpy as np

    from experiment.config import load_experiment

    config = load_experiment(dataset / "experiment.yaml")
    arm = next(a for a in config.arms if a != config.control)
    path = dataset / "assignments.parquet"
    table = pq.read_table(path)
    in_arm = pc.equal(table["arm"], arm).to_numpy(zero_copy_only=False)
    drop = in_arm & (np.random.default_rng(0).random(len(table)) < share)
    pq.write_table(table.filter(~drop), path)


@pytest.fixture(scope="module")
def scenario_dataset(tmp_path_factory):
    import simulators

    scenario = "saas" if "saas" in simulators.builtin_scenarios() else "ecommerce"
    folder = tmp_path_factory.mktemp("sim") / "data"
    simulators.simulate(scenario, users=4000, days=3, seed=11, out=folder)
    return folder


@pytest.mark.parametrize("planted", [False, True])
def test_browser_scenario_report_shows_srm_banner_only_when_planted(
    scenario_dataset, tmp_path, planted
):
    from experiment.cli.analyze import run_analysis

    data = tmp_path / "data"
    shutil.copytree(scenario_dataset, data)
    if planted:
        _plant_srm(data, 0.15)
    run_analysis(data, data / "experiment.yaml", tmp_path / "out", html=True)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["srm"]["flag"] is planted
    seen = open_page(tmp_path / "out" / "report.html", tmp_path / "report.png", height=900)
    assert seen.console == []
    ids = Elements(seen.dom).with_id("srm-banner")
    assert ids == (["srm-banner"] if planted else [])
