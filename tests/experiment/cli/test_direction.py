"""End to end: a lower-is-better metric through `exp analyze` (real DuckDB) into results.json."""

import json

import pytest
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.planted import write_planted

runner = CliRunner()

EXPERIMENT = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
window: {days: 14}
metrics:
  - {name: refunds, kind: proportion, event: purchase, higher_is_better: false,
     guardrail: {max_drop: 0.05}}
"""


@pytest.mark.parametrize(
    ("lift", "decision", "verdict"),
    [(-0.4, "✔ ship", "win"), (0.4, "✖ don't ship", "loss")],
)
def test_analyze_lower_is_better_metric(tmp_path, lift, decision, verdict):
    folder = write_planted(tmp_path / "data", n_users=8000, lift_above=lift, lift_below=lift)
    (folder / "experiment.yaml").write_text(EXPERIMENT)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["analyze", str(folder), "-e", str(folder / "experiment.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    [row, *_] = json.loads((out / "results.json").read_text())["results"]
    assert row["segment"] == "all"
    assert row["higher_is_better"] is False
    assert row["significant"] is True
    assert (row["chance_to_win"] > 0.5) == (lift < 0)
    assert row["guardrail_breached"] is (lift > 0)
    assert decision in result.stdout
    assert verdict in result.stdout
    assert "↓ lower is better" in result.stdout
