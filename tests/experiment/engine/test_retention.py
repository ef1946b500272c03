"""Retention metrics: share of users with an event on day ``day`` after assignment."""

import shutil

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig, load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from experiment.sums import MeanSums

METRICS = """\
  - {name: d0_retention, kind: retention, event: session, day: 0}
  - {name: d7_retention, kind: retention, event: session, day: 7}
"""


@pytest.fixture(scope="module")
def retention(dataset_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("retention")
    for name in ("customers", "events", "assignments"):
        shutil.copy(dataset_dir / f"{name}.parquet", folder)
    (folder / "experiment.yaml").write_text(
        (dataset_dir / "experiment.yaml").read_text().replace("segments: segments.yaml\n", "")
        + METRICS
    )
    config = load_experiment(folder / "experiment.yaml")
    cells = aggregate(open_dataset(folder), config, None)
    return folder, config, cells


@pytest.mark.parametrize("day", [0, 7])
def test_retention_equals_pandas_reference(retention, day):
    folder, _, cells = retention
    asg = pd.read_parquet(folder / "assignments.parquet")
    asg = asg[asg.experiment == "exp1"].set_index("user_id")
    ev = pd.read_parquet(folder / "events.parquet")
    ev = ev[ev.event == "session"].join(asg.assigned_at, on="user_id", how="inner")
    start = asg.assigned_at.min()
    begin = ev.assigned_at + pd.Timedelta(days=day)
    on_day = ev[(ev.ts >= begin) & (ev.ts < begin + pd.Timedelta(days=1))]
    on_day = on_day[(on_day.ts >= start) & (on_day.ts < start + pd.Timedelta(days=14))]
    retained = asg.index.isin(on_day.user_id.unique()).astype(float)
    ref = pd.Series(retained, index=asg.index).groupby(asg.arm).agg(["count", "mean"])
    sums = cells.metrics[f"d{day}_retention"]
    assert isinstance(sums, MeanSums)
    for j, arm in enumerate(cells.arms):
        assert sums.n[0, j] == ref.loc[arm, "count"]
        assert sums.mean[0, j] == pytest.approx(ref.loc[arm, "mean"], rel=1e-12)
    assert 0 < sums.mean[0, 0] < 1


def test_retention_rows_are_proportions(retention):
    _, config, cells = retention
    results = analyze_cells(cells, config, None)
    (row,) = [r for r in results.results if r.metric == "d7_retention"]
    assert row.metric_kind == "retention"
    assert row.method.startswith("welch-t")
    assert np.isfinite(row.chance_to_win)


@pytest.mark.parametrize(
    ("metric", "phrase"),
    [
        ({"name": "r", "kind": "retention", "event": "session"}, "'day' is required"),
        ({"name": "r", "kind": "proportion", "event": "session", "day": 3}, "'day' is required"),
        ({"name": "r", "kind": "retention", "event": "session", "day": 14}, "past the window"),
    ],
)
def test_retention_config_errors(metric, phrase):
    with pytest.raises(ValidationError, match=phrase):
        ExperimentConfig.model_validate({"name": "e", "window": {"days": 14}, "metrics": [metric]})
