"""Names and values from the data, the config and the paths never reach a terminal raw.

A dataset whose experiment name, treatment arm, customer attribute values and
folder name carry ANSI/OSC escape sequences, BEL, CR, newlines, tabs, quotes
and rich markup (``[/]``, ``[bold]``) goes through every command that prints:
stdout and stderr hold no ESC, BEL or CR, no markup error, and the commands
succeed (exit 0; ``segments validate`` may flag a segment with exit 1).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.dataset import write_dataset

NAME = "x\x1b]0;owned\x07[/]\x1b[2J [bold]y\r"
ARM = "tr[/]eat\x1b[31m\x07"
VALUE = 'tab"let\n\t\x1b]8;;http://evil\x1b\\[red]'
FOLDER = "d\x1b]0;t\x07[/]ir"
_CONTROL = ("\x1b", "\x07", "\r", "\x9b", "\x9d")


def _yaml_quoted(text: str) -> str:
    """A YAML double-quoted scalar (escapes for the control characters)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    for ch, esc in (("\x1b", "\\e"), ("\x07", "\\a"), ("\r", "\\r"), ("\n", "\\n"), ("\t", "\\t")):
        escaped = escaped.replace(ch, esc)
    return f'"{escaped}"'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small test dataset with hostile names, in a folder with a hostile name."""
    folder = write_dataset(tmp_path_factory.mktemp("hostile") / FOLDER / "data", n_users=1500)
    text = (folder / "experiment.yaml").read_text()
    text = text.replace("name: exp1", f"name: {_yaml_quoted(NAME)}")
    arms = f"arms: {{control: 0.5, {_yaml_quoted(ARM)}: 0.5}}"
    (folder / "experiment.yaml").write_text(text.replace("salt: exp1-salt", f"salt: s\n{arms}"))
    asg = pq.read_table(folder / "assignments.parquet")
    ours = pc.equal(asg["experiment"], "exp1")
    asg = asg.set_column(1, "experiment", pc.if_else(ours, NAME, asg["experiment"]))
    treated = pc.and_(ours, pc.equal(asg["arm"], "treatment"))
    asg = asg.set_column(2, "arm", pc.if_else(treated, ARM, asg["arm"]))
    pq.write_table(asg, folder / "assignments.parquet")
    customers = pq.read_table(folder / "customers.parquet")
    device = pc.replace_substring(customers["device"], "tablet", VALUE)
    pq.write_table(customers.set_column(3, "device", device), folder / "customers.parquet")
    return folder


def _check(argv: list[str], ok: tuple[int, ...] = (0,)) -> str:
    result = CliRunner().invoke(app, argv)
    shown = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert result.exit_code in ok, shown
    assert not any(ch in shown for ch in _CONTROL), repr(shown)
    assert "Traceback" not in shown, shown
    assert "MarkupError" not in shown, shown
    return shown


def _exp(data: Path) -> list[str]:
    return ["-e", str(data / "experiment.yaml")]


def test_analyze_and_report_print_no_control_characters(hostile, tmp_path):
    out = tmp_path / "r"
    shown = _check(["analyze", str(hostile), *_exp(hostile), "--out", str(out)])
    assert "[/]" in shown  # the name is shown, as text, not swallowed as markup
    _check(["report", str(out / "results.json"), "--out", str(tmp_path / "page.html")])


def test_refine_prints_attribute_values_without_control_characters(hostile, tmp_path):
    argv = ["refine", str(hostile), *_exp(hostile), "--attributes", "device"]
    _check([*argv, "--min-size", "20", "--out", str(tmp_path / "p.yaml")])


def test_segments_validate_and_show_print_no_control_characters(hostile):
    segments = str(hostile / "segments.yaml")
    _check(["segments", "validate", segments, "--data", str(hostile), *_exp(hostile)], (0, 1))
    _check(["segments", "show", segments, "--data", str(hostile)])


def test_power_prints_no_control_characters(hostile):
    _check(["power", str(hostile), *_exp(hostile)])


def test_errors_quoting_hostile_names_print_no_control_characters(hostile, tmp_path):
    """An error naming the hostile experiment: one clean line, exit 2."""
    text = (hostile / "experiment.yaml").read_text().replace("\\e]0;owned", "\\e]0;gone")
    (tmp_path / "e.yaml").write_text(text.replace("segments.yaml", str(hostile / "segments.yaml")))
    argv = ["analyze", str(hostile), "-e", str(tmp_path / "e.yaml"), "--out", str(tmp_path / "r")]
    shown = _check(argv, (2,))
    assert len([line for line in shown.splitlines() if line.strip()]) == 1


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_csv_and_json_on_standard_output_hold_no_control_characters(hostile, tmp_path, fmt):
    """Machine formats are printed to a terminal too when not piped: the arm is text."""
    argv = ["analyze", str(hostile), *_exp(hostile), "--out", str(tmp_path / "r")]
    shown = _check([*argv, "--format", fmt])
    assert "tr[/]eat" in shown
    segments = str(hostile / "segments.yaml")
    _check(["segments", "show", segments, "--data", str(hostile), "--format", fmt])


def test_target_prints_and_writes_no_control_characters(hostile, tmp_path):
    page = tmp_path / "t.html"
    argv = ["target", str(hostile), *_exp(hostile), "--out", str(tmp_path / "p.yaml")]
    _check([*argv, "--report", str(page)])
    _check([*argv, "--report", str(page), "--format", "csv"])
    assert not any(ch in page.read_text() for ch in ("\x00", *_CONTROL))


def test_html_reports_hold_no_control_characters(hostile, tmp_path):
    """Control characters are not valid HTML text, and reach a terminal through ``cat``."""
    out = tmp_path / "r"
    _check(["analyze", str(hostile), *_exp(hostile), "--out", str(out)])
    _check(["report", str(out / "results.json"), "--out", str(tmp_path / "page.html")])
    for page in (out / "report.html", tmp_path / "page.html"):
        html = page.read_text()
        assert "tr[/]eat" in html
        assert not any(ch in html for ch in _CONTROL), page
