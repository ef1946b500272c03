"""Regression adjustment (``cuped: [a, b, c]``) through the engine equals statsmodels OLS."""

from __future__ import annotations

import functools
import shutil

import numpy as np
import pandas as pd
import pytest

from experiment.analysis.compare import compare
from experiment.analysis.lift import analyze_cells
from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from experiment.errors import ConfigError
from segments import load_segments
from tests.fixtures.dataset import per_user_reference as _per_user_reference
from tests.fixtures.regression import REGRESSION_EXPERIMENT

EXPERIMENT = REGRESSION_EXPERIMENT


@pytest.fixture(scope="module")
def folder(dataset_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("regression")
    for name in ("events.parquet", "segments.yaml", "customers.parquet", "assignments.parquet"):
        shutil.copy(dataset_dir / name, out / name)
    (out / "experiment.yaml").write_text(EXPERIMENT)
    return out


@functools.cache
def _cells(folder):
    """The config, segments and engine sums of ``folder`` (computed once per folder)."""
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    segment_set = load_segments(config.segments)
    return config, segment_set, aggregate(open_dataset(folder), config, segment_set)


per_user_reference = functools.cache(_per_user_reference)  # read-only in these tests


def _linearised(df: pd.DataFrame) -> np.ndarray:
    """Per user ``ψ = R + (click - R·impression) / mean(impression)``, ``R`` per arm."""
    psi = np.empty(len(df))
    for arm in ("control", "treatment"):
        at = (df.arm == arm).to_numpy()
        y, x = df.click.to_numpy()[at], df.impression.to_numpy()[at]
        ratio = y.sum() / x.sum()
        psi[at] = ratio + (y - ratio * x) / x.mean()
    return psi


def _statsmodels(df: pd.DataFrame, metric: str):
    sm = pytest.importorskip("statsmodels.api")
    y = _linearised(df) if metric == "ctr" else df[metric].to_numpy()
    t = (df.arm == "treatment").astype(float).to_numpy()
    device = pd.get_dummies(df.device, drop_first=True, dtype=float).to_numpy()
    x = np.column_stack(
        [df.orders_90d.fillna(0).to_numpy(), df.days_since_last_login.to_numpy(), device]
    )
    x = x - x.mean(axis=0)  # y ~ t + (x - x̄): the pooled-slope model
    fit = sm.OLS(y, sm.add_constant(np.column_stack([t, x]))).fit(cov_type="HC2")
    return fit.params[1], fit.bse[1]


@pytest.mark.parametrize(
    ("metric", "column"), [("conversion", "conversion"), ("revenue", "revenue"), ("ctr", "ctr")]
)
@pytest.mark.parametrize("segment", ["all", "buyers"])
def test_engine_regression_equals_statsmodels_ols_hc2(folder, metric, column, segment):
    config, _, cells = _cells(folder)
    ref = per_user_reference(folder)
    df = ref[ref[f"seg_{segment}"]]
    est, se = _statsmodels(df, column)
    res = compare(cells, metric, 0, 1, config.alpha)
    si = cells.segments.index(segment)
    assert res.lift_abs[si] == pytest.approx(est, rel=1e-9, abs=1e-12)
    assert res.se_abs[si] == pytest.approx(se, rel=0.01)
    assert cells.regression_names[metric][-2:] != ()


def test_engine_regression_fields_and_labels(folder):
    config, segment_set, cells = _cells(folder)
    results = analyze_cells(cells, config, segment_set)
    names = results.regression_covariates["revenue"]
    assert names[0].startswith("device=")
    assert names[-2:] == ("orders_90d", "days_since_last_login")
    assert len(names) == 4  # two of three device levels, then the numeric columns
    assert results.cuped_covariates == {"sessions": "orders_90d"}
    row = next(r for r in results.results if r.metric == "revenue" and r.segment == "all")
    assert row.method.startswith("cuped(device + orders_90d + days_since_last_login) welch-t,")
    assert 0 <= row.cuped_variance_reduction < 1


def test_engine_regression_unknown_column_is_config_error(folder, tmp_path):
    for name in ("events.parquet", "segments.yaml", "customers.parquet", "assignments.parquet"):
        shutil.copy(folder / name, tmp_path / name)
    (tmp_path / "experiment.yaml").write_text(EXPERIMENT.replace("device]", "devise]", 1))
    with pytest.raises(ConfigError, match="'devise' is not a column of the customers"):
        _cells(tmp_path)


def test_engine_regression_timestamp_column_is_config_error(folder, tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    for name in ("events.parquet", "segments.yaml", "assignments.parquet"):
        shutil.copy(folder / name, tmp_path / name)
    customers = pq.read_table(folder / "customers.parquet")
    seen = pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * customers.num_rows)
    pq.write_table(customers.append_column("signup_at", seen), tmp_path / "customers.parquet")
    (tmp_path / "experiment.yaml").write_text(EXPERIMENT.replace("device]", "signup_at]", 1))
    with pytest.raises(ConfigError, match="'signup_at' is of type timestamp"):
        _cells(tmp_path)


def test_engine_regression_results_json_round_trip(folder):
    import json

    from experiment.results import AnalysisResults

    config, segment_set, cells = _cells(folder)
    results = analyze_cells(cells, config, segment_set)
    doc = json.loads(results.to_json())
    assert doc["regression_covariates"]["conversion"][:2] == ["orders_90d", "days_since_last_login"]
    back = AnalysisResults.from_json_dict(doc)
    assert back.regression_covariates == results.regression_covariates
    del doc["regression_covariates"]  # an older file
    assert AnalysisResults.from_json_dict(doc).regression_covariates == {}


def test_power_mde_uses_regression_r2(folder):
    from experiment.analysis.mde import cell_mde
    from experiment.stats import arm_moments, mde_cell, regression_r2

    config, _, cells = _cells(folder)
    metric = next(m for m in config.metrics if m.name == "revenue")
    sizes = (cells.units[:, 0], cells.units[:, 1])
    r2 = regression_r2(cells.regression["revenue"][:, 0])
    assert 0.0 < r2[0] < 1.0
    mean, var = arm_moments(cells, "revenue", 0)
    kw = {"alpha": config.alpha, "power": config.power, "alternative": metric.alternative}
    want = mde_cell(mean, var, *sizes, **kw, variance_reduction=r2).mde_rel
    plain = mde_cell(mean, var, *sizes, **kw).mde_rel
    got = cell_mde(cells, metric, config, sizes).mde_rel
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] < plain[0]


def test_regressors_keep_the_20_most_frequent_levels():
    import ibis

    from experiment.config import MetricSpec
    from experiment.engine.regressors import MAX_LEVELS, regressors

    levels = [f"l{i:02d}" for i in range(30) for _ in range(30 - i)]  # l00 most frequent
    few = ["a"] * 5 + ["b"] * 3 + ["c"]
    customers = ibis.memtable(
        {
            "user_id": [str(i) for i in range(len(levels))],
            "city": levels,
            "tier": (few * 60)[: len(levels)],
        }
    )
    metric = MetricSpec.model_validate(
        {"name": "m", "kind": "mean", "event": "e", "cuped": ["city", "tier"]}
    )
    names = regressors(customers, [metric]).names
    assert names[:MAX_LEVELS] == tuple(f"city=l{i:02d}" for i in range(MAX_LEVELS))
    assert names[MAX_LEVELS:] == ("tier=a", "tier=b")  # c, the rarest, is the reference


def test_api_analyze_runs_the_regression_and_saved_sums_reproduce_it(folder, tmp_path):
    from experiment.api import analyze, analyze_sums
    from experiment.results.sums import write_sums

    results = analyze(folder, folder / "experiment.yaml")
    assert set(results.regression_covariates) == {"conversion", "revenue", "ctr"}
    config, _, cells = _cells(folder)
    path = write_sums(cells, tmp_path / "sums.parquet")
    again = analyze_sums(path, config)
    assert again.to_json() == results.to_json()


def test_saved_sums_without_regression_columns_load_and_are_refused(folder, tmp_path):
    """An older sums file (no reg_* columns) still loads; its cuped lists are refused."""
    import pyarrow.parquet as pq

    from experiment.api import analyze_sums
    from experiment.results.sums import read_sums, write_sums

    config, _, cells = _cells(folder)
    path = write_sums(cells, tmp_path / "sums.parquet")
    table = pq.read_table(path)
    old = table.drop_columns(["reg_mean_x", "reg_c_xx", "reg_c_xy"])
    pq.write_table(old, tmp_path / "old.parquet")
    loaded = read_sums(tmp_path / "old.parquet")
    assert loaded.regression == {}
    assert loaded.metrics["ctr"].n.tolist() == cells.metrics["ctr"].n.tolist()
    with pytest.raises(ConfigError, match="hold no regression sums for its 'cuped' list"):
        analyze_sums(tmp_path / "old.parquet", config)


def test_saved_sums_with_other_covariates_are_refused(folder, tmp_path):
    from experiment.api import analyze_sums
    from experiment.results.sums import write_sums

    _, _, cells = _cells(folder)
    path = write_sums(cells, tmp_path / "sums.parquet")
    other = (folder / "experiment.yaml").read_text().replace("device]", "orders_90d]", 1)
    other = other.replace("orders_90d, days_since_last_login, orders_90d]", "orders_90d]", 1)
    (tmp_path / "other.yaml").write_text(other)
    shutil.copy(folder / "segments.yaml", tmp_path / "segments.yaml")
    with pytest.raises(ConfigError, match="'cuped' list differs from the sums'"):
        analyze_sums(path, tmp_path / "other.yaml")


def test_engine_regression_large_offset_covariate(folder, tmp_path):
    """A covariate whose mean dwarfs its spread (1e9 + days) gives the same adjustment."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name in ("events.parquet", "segments.yaml", "assignments.parquet"):
        shutil.copy(folder / name, tmp_path / name)
    customers = pq.read_table(folder / "customers.parquet")
    days = customers.column("days_since_last_login").to_numpy().astype(float)
    customers = customers.append_column("epoch_day", pa.array(1e9 + days))
    pq.write_table(customers, tmp_path / "customers.parquet")
    text = EXPERIMENT.replace("days_since_last_login, device]", "epoch_day, device]", 1)
    (tmp_path / "experiment.yaml").write_text(text)
    config, _, cells = _cells(tmp_path)
    _, _, base = _cells(folder)
    got = compare(cells, "conversion", 0, 1, config.alpha)
    want = compare(base, "conversion", 0, 1, config.alpha)
    # the arms' mean differences of a 1e9 covariate keep ~1e-7 of ~0.5 (float64 means);
    # without the engine's shift the cross-moments would lose every digit
    np.testing.assert_allclose(got.lift_abs, want.lift_abs, rtol=1e-6)
    np.testing.assert_allclose(got.se_abs, want.se_abs, rtol=1e-6)
    mean_x = cells.regression["conversion"].mean_x[0, 0, 1]
    assert mean_x == pytest.approx(1e9 + days.mean(), rel=1e-3)


@pytest.mark.parametrize("metric", ["revenue", "ctr"])
def test_rest_of_a_segment_is_adjusted_on_the_rest(folder, metric):
    """Segment-vs-rest: the rest's regression sums are complemented, not the segment's."""
    from experiment.analysis.interaction import rest_cells

    config, _, cells = _cells(folder)
    ref = per_user_reference(folder)
    est, se = _statsmodels(ref[~ref.seg_lapsed_desktop], metric)
    res = compare(rest_cells(cells), metric, 0, 1, config.alpha)
    si = cells.segments.index("lapsed_desktop")
    assert res.lift_abs[si] == pytest.approx(est, rel=1e-9, abs=1e-12)
    assert res.se_abs[si] == pytest.approx(se, rel=0.01)


def test_power_reduction_of_a_ratio_is_the_r2_of_its_linearisation(folder):
    """exp power / validate: a ratio's variance reduction is ψ's R² on the covariates."""
    from experiment.stats import cuped_reduction

    _, _, cells = _cells(folder)
    ref = per_user_reference(folder)
    psi = _linearised(ref)[(ref.arm == "control").to_numpy()]
    control = ref[ref.arm == "control"]
    device = pd.get_dummies(control.device, drop_first=True, dtype=float).to_numpy()
    design = np.column_stack(
        [
            np.ones(len(control)),
            control.orders_90d.fillna(0).to_numpy(),
            control.days_since_last_login.to_numpy(),
            device,
        ]
    )
    beta, *_ = np.linalg.lstsq(design, psi, rcond=None)
    r2 = 1 - (psi - design @ beta).var() / psi.var()
    assert cuped_reduction(cells, "ctr", 0)[0] == pytest.approx(r2, rel=1e-9)
