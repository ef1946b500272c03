"""CUPED wired through config, engine and analysis, against a per-user OLS reference."""

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.analysis import analyze_cells
from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from experiment.errors import ConfigError
from experiment.sums import JointSums, MeanSums
from segments import load_segments
from tests.fixtures.dataset import per_user_reference, write_dataset

CUPED_YAML = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
window: {days: 14}
metrics:
  - {name: conversion, kind: proportion, event: purchase, cuped: revenue_90d}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
  - {name: revenue_per_user, kind: mean, event: purchase, value: revenue, cuped: revenue_90d}
  - {name: purchases, kind: mean, event: purchase}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The shared test dataset plus a customers column correlated with the metrics.

    ``revenue_90d`` is built from each user's in-window revenue plus noise (so it
    correlates, as a real pre-period spend would), with 5% nulls and 2% NaN (both
    read as 0).
    """
    folder = write_dataset(tmp_path_factory.mktemp("cuped"), n_users=2000, n_events=30_000, rng=3)
    ref = per_user_reference(folder)
    gen = np.random.default_rng(8)
    cust = pq.read_table(folder / "customers.parquet").to_pandas()
    y = cust.user_id.map(ref.revenue).fillna(0.0).to_numpy()
    x = 0.7 * y + gen.gamma(2.0, 20.0, len(cust))
    draw = gen.random(len(cust))
    x[draw < 0.02] = np.nan
    cust["plan"] = gen.choice(["free", "pro"], len(cust))
    table = pa.Table.from_pandas(cust, preserve_index=False)
    column = pa.array(x, mask=(draw >= 0.02) & (draw < 0.07))  # NaN kept, nulls masked
    table = table.append_column("revenue_90d", column)
    assert column.null_count > 0
    assert np.isnan(column.to_numpy(zero_copy_only=False)).sum() > column.null_count
    pq.write_table(table, folder / "customers.parquet")
    (folder / "cuped.yaml").write_text(CUPED_YAML)
    return folder


@pytest.fixture(scope="module")
def analysed(folder):
    config = load_experiment(folder / "cuped.yaml")
    assert config.segments is not None
    segment_set = load_segments(config.segments)
    cells = aggregate(open_dataset(folder), config, segment_set)
    return config, cells, analyze_cells(cells, config, segment_set)


def _ols(d: pd.DataFrame, y: str):
    import statsmodels.formula.api as smf

    frame = pd.DataFrame(
        {"y": d[y], "t": (d.arm == "treatment").astype(float), "xc": d.x - d.x.mean()}
    )
    return smf.ols("y ~ t + xc", data=frame).fit().params


def _ols_lift(d: pd.DataFrame, y: str) -> float:
    return float(_ols(d, y)["t"])


def test_cuped_lift_equals_ols_treatment_coefficient(folder, analysed):
    _config, cells, results = analysed
    df = per_user_reference(folder)
    df["x"] = df.revenue_90d.fillna(0.0)
    checked = 0
    for metric, col in (("revenue_per_user", "revenue"), ("conversion", "conversion")):
        for segment in cells.segments:
            d = df[df[f"seg_{segment}"]]
            row = next(r for r in results.results if r.segment == segment and r.metric == metric)
            ols = _ols_lift(d, col)
            assert row.lift_abs == pytest.approx(ols, rel=1e-9, abs=1e-12)
            control = d[d.arm == "control"][col]
            assert row.mean_control == pytest.approx(control.mean(), rel=1e-12)
            assert row.method == "cuped(revenue_90d) welch-t, fieller relative CI, holm"
            # The adjusted means are the OLS fit's predictions at the pooled covariate mean.
            params = _ols(d, col)
            assert row.mean_control_adj == pytest.approx(params["Intercept"], rel=1e-9)
            assert row.mean_treatment_adj == pytest.approx(
                params["Intercept"] + params["t"], rel=1e-9
            )
            checked += 1
    assert checked == 2 * len(cells.segments)


def test_cuped_reduces_variance_when_covariate_correlates(analysed):
    _config, _cells, results = analysed
    rev = [r for r in results.results if r.metric == "revenue_per_user"]
    assert all(r.cuped_variance_reduction > 0.2 for r in rev)
    assert all(0 < r.cuped_variance_reduction < 1 for r in rev)
    for r in results.results:
        if r.metric in ("ctr", "purchases"):
            assert math.isnan(r.cuped_variance_reduction)
            assert math.isnan(r.mean_control_adj)
            assert math.isnan(r.mean_treatment_adj)
            assert not r.method.startswith("cuped")


def test_cuped_joint_sums_equal_per_user_moments(folder, analysed):
    _config, cells, _results = analysed
    df = per_user_reference(folder)
    df["x"] = df.revenue_90d.fillna(0.0)
    joint = cells.cuped["revenue_per_user"]
    assert isinstance(joint, JointSums)
    assert isinstance(cells.metrics["revenue_per_user"], MeanSums)  # y margin, unchanged
    assert "ctr" not in cells.cuped
    for j, arm in enumerate(cells.arms):
        d = df[df.arm == arm]
        assert joint.mean_x[0, j] == pytest.approx(d.x.mean(), rel=1e-12)
        assert joint.x.var[0, j] == pytest.approx(d.x.var(ddof=1), rel=1e-9)
        assert joint.cov[0, j] == pytest.approx(np.cov(d.revenue, d.x)[0, 1], rel=1e-9)


def test_cuped_covariates_written_to_results_json(analysed):
    _config, _cells, results = analysed
    doc = json.loads(results.to_json())
    assert doc["cuped_covariates"] == {
        "conversion": "revenue_90d",
        "revenue_per_user": "revenue_90d",
    }
    row = next(r for r in doc["results"] if r["metric"] == "revenue_per_user")
    assert 0 < row["cuped_variance_reduction"] < 1


def test_cuped_on_ratio_metric_is_its_regression_adjustment(folder, tmp_path):
    """A ratio's ``cuped: x`` adjusts its linearisation: a list of one covariate."""
    text = CUPED_YAML.replace(
        "denominator: {event: impression}}", "denominator: {event: impression}, cuped: x}"
    )
    (tmp_path / "e.yaml").write_text(text)
    ctr = next(m for m in load_experiment(tmp_path / "e.yaml").metrics if m.name == "ctr")
    assert (ctr.cuped, ctr.covariates) == (None, ("x",))


@pytest.mark.parametrize(
    ("column", "phrase"),
    [("revenue_9d", "'revenue_9d' is not a column"), ("plan", "'plan' is not numeric")],
)
def test_cuped_unknown_or_text_column_is_config_error(folder, tmp_path, column, phrase):
    (tmp_path / "segments.yaml").write_text((folder / "segments.yaml").read_text())
    (tmp_path / "e.yaml").write_text(
        CUPED_YAML.replace("cuped: revenue_90d}", f"cuped: {column}}}")
    )
    config = load_experiment(tmp_path / "e.yaml")
    with pytest.raises(ConfigError) as err:
        aggregate(open_dataset(folder), config, None)
    message = str(err.value)
    assert "metric 'conversion': field 'cuped'" in message
    assert phrase in message
    assert "numeric columns are: orders_90d, days_since_last_login, revenue_90d" in message
    assert "\n" not in message
