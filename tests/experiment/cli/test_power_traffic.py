"""`exp power`: the traffic model is explicit, and a window beyond the data is an extrapolation."""

import json
import math
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.cli import assert_one_line_error

runner = CliRunner()


def _power(*args):
    result = runner.invoke(app, ["power", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def at_once(dataset_dir, tmp_path_factory):
    """The fixture dataset with every assignment at one timestamp (a customer base)."""
    folder = tmp_path_factory.mktemp("at_once")
    for name in ("customers", "events", "segments.yaml", "experiment.yaml"):
        src = dataset_dir / (name if "." in name else f"{name}.parquet")
        shutil.copy(src, folder / src.name)
    asg = pd.read_parquet(dataset_dir / "assignments.parquet")
    asg["assigned_at"] = asg.assigned_at.min()
    asg.to_parquet(folder / "assignments.parquet")
    return folder


def test_one_timestamp_defaults_to_a_fixed_base_without_days(at_once):
    doc = _power(str(at_once), "-e", str(at_once / "experiment.yaml"), "--lift", "0.1")
    assert doc["traffic"] == "base"
    assert doc["users_per_day"] is None
    for row in doc["rows"]:
        assert row["days_needed"] is None
        assert row["base_share_needed"] == pytest.approx(
            row["users_needed"] / row["users"], rel=0.01
        )


def test_spread_assignments_default_to_daily_arrivals(dataset_dir):
    doc = _power(str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"))
    assert doc["traffic"] == "daily"
    assert all(r["days_needed"] is not None for r in doc["rows"] if r["users_needed"])


def test_the_model_can_be_forced_either_way(dataset_dir, at_once):
    base = _power(str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"), "--traffic", "base")
    assert base["traffic"] == "base"
    assert all(r["days_needed"] is None for r in base["rows"])
    daily = _power(
        str(at_once), "-e", str(at_once / "experiment.yaml"), "--traffic", "daily",
        "--users-per-day", "300",
    )  # fmt: skip
    row = next(r for r in daily["rows"] if r["segment"] == "all" and r["metric"] == "conversion")
    assert (daily["traffic"], daily["users_per_day"]) == ("daily", 300)
    assert row["days_needed"] == pytest.approx(row["users_needed"] / 300, rel=1e-3)


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [(["--traffic", "daily"], "every assignment has one timestamp"), (["--traffic", "x"], "'x'")],
)
def test_daily_without_a_rate_or_an_unknown_model_is_exit_2(at_once, extra, phrase):
    result = runner.invoke(
        app, ["power", str(at_once), "-e", str(at_once / "experiment.yaml"), *extra]
    )
    assert_one_line_error(result, phrase)


def test_a_window_beyond_the_data_is_an_explicit_extrapolation(dataset_dir):
    events = pd.read_parquet(dataset_dir / "events.parquet")
    asg = pd.read_parquet(dataset_dir / "assignments.parquet")
    first = asg[asg.experiment == "exp1"].assigned_at.min()
    data_days = math.ceil((events.ts.max() - first).total_seconds() / 86_400)
    exp = str(dataset_dir / "experiment.yaml")
    inside = _power(str(dataset_dir), "-e", exp, "--days", str(data_days))
    beyond = _power(str(dataset_dir), "-e", exp, "--days", str(data_days + 10))
    assert inside["data_days"] == beyond["data_days"] == data_days
    assert (inside["extrapolated"], beyond["extrapolated"]) == (False, True)
    assert beyond["window_days"] == data_days + 10  # kept, never capped
    table = runner.invoke(
        app, ["power", str(dataset_dir), "-e", exp, "--days", str(data_days + 10)]
    )
    assert table.exit_code == 0
    assert "extrapolation" in table.stdout
    assert "daily arrivals" in table.stdout
