"""``exp analyze`` and ``exp segments validate`` on data that changes how results read.

Such data does not stop the run (exit 0, or 1 for a failed segment check): the
findings are warnings, printed first in yellow, kept in results.json and shown on
top of report.html.
"""

import datetime as dt
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.dataset import START

SEGMENTS = """\
segments:
  - name: buyers
    where: "orders_90d >= 1"
  - name: buyers_again
    where: "orders_90d >= 1 and days_since_last_login >= 0"
  - name: bronz
    where: "device in ['mobil']"
"""

EXCLUSIVE = """\
exclusive: true
segments:
  - name: mobile
    where: "device == 'mobile'"
  - name: phones
    where: "device == 'mobile' and orders_90d >= 0"
  - name: everyone_else
    where: "device != 'mobile'"
"""


@pytest.fixture
def data(tmp_path, dataset_dir):
    folder = shutil.copytree(dataset_dir, tmp_path / "data")
    (folder / "segments.yaml").write_text(SEGMENTS)
    return folder


def _analyze(data, out):
    argv = ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(out)]
    return CliRunner().invoke(app, argv)


def test_analyze_prints_segment_warnings_first_and_keeps_them(data, tmp_path):
    result = _analyze(data, tmp_path / "out")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    table = next(i for i, line in enumerate(lines) if "lift vs control" in line)
    warned = [i for i, line in enumerate(lines) if line.startswith("warning: ")]
    assert warned
    assert max(warned) < table  # on top of the tables
    text = " ".join(result.stdout.split())
    assert "segment(s) 'bronz' have no assigned users" in text
    assert "'buyers_again' has exactly the analysed users of 'buyers'" in text
    assert "value 'mobil' never occurs in column 'device'; did you mean 'mobile'?" in text
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    warnings = [c for c in doc["data_quality"]["checks"] if c["severity"] == "warning"]
    assert {c["name"] for c in warnings} == {"empty_segments", "segment_definitions"}
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.index('id="data-quality-banner"') < page.index("<h2>Decisions</h2>")
    assert "did you mean &#39;mobile&#39;?" in page


def test_analyze_warns_when_most_events_fall_outside_the_window(data, tmp_path):
    """Users re-assigned 9 and 30 days late: most of the events precede the window."""
    path = data / "assignments.parquet"
    t = pq.read_table(path)
    late = START + dt.timedelta(days=30)
    early = START + dt.timedelta(days=9)  # the window opens on the earliest assignment
    when = [late if i % 2 else early for i in range(len(t))]
    t = t.set_column(3, "assigned_at", pa.array(when, pa.timestamp("us", tz="UTC")))
    pq.write_table(t.filter(pa.compute.equal(t["experiment"], "exp1")), path)
    (data / "segments.yaml").write_text(
        "segments:\n  - {name: all_buyers, where: 'orders_90d >= 0'}\n"
    )
    result = _analyze(data, tmp_path / "out")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    by = {c["name"]: c for c in doc["data_quality"]["checks"]}
    outside = by["events_outside_window"]
    assert outside["severity"] == "warning"
    assert outside["count"] / 40_000 > 0.5
    assert "warning: " in result.stdout


def test_validate_flags_empty_shadowed_and_duplicate_segments(data, tmp_path):
    (tmp_path / "excl.yaml").write_text(EXCLUSIVE)
    argv = ["segments", "validate", str(tmp_path / "excl.yaml"), "--data", str(data), "--json"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    flags = {s["name"]: s["flags"] for s in doc["segments"]}
    sizes = {s["name"]: s["size"] for s in doc["segments"]}
    assert flags["phones"] == ["SHADOWED"]  # not "below minimum size"
    assert flags["rest"] == ["EMPTY"]
    assert sizes["phones"] == sizes["rest"] == 0
    assert any(
        "'phones' is empty: every customer it matches is taken" in w for w in doc["warnings"]
    )
    argv = ["segments", "validate", str(data / "segments.yaml"), "--data", str(data)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines[0].startswith("warning: ")
    assert "did you mean 'mobile'?" in " ".join(result.stdout.split())
    result = CliRunner().invoke(app, [*argv, "--json"])
    doc = json.loads(result.stdout)
    flags = {s["name"]: s["flags"] for s in doc["segments"]}
    assert flags == {"buyers": [], "buyers_again": ["DUPLICATE"], "bronz": ["EMPTY"]}
