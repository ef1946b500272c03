"""One MDE: ``exp analyze``, ``exp power`` and ``exp segments validate`` agree on every cell.

The same small dataset (with a CUPED covariate correlated with revenue) goes
through the three paths; their relative MDEs must agree to 1e-9, and one cell
is checked against an independent reference (pandas moments, numpy's
correlation and statsmodels' NormalIndPower).
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from statsmodels.stats.power import NormalIndPower
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.dataset import per_user_reference

runner = CliRunner()

EXPERIMENT = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
window: {days: 14}
metrics:
  - {name: conversion, kind: proportion, event: purchase}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
  - {name: revenue_per_user, kind: mean, event: purchase, value: revenue, cuped: revenue_prev}
  - {name: spend_down, kind: mean, event: purchase, value: revenue, alternative: less}
"""


@pytest.fixture(scope="module")
def cuped_dir(dataset_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mde")
    for name in ("customers", "events", "assignments"):
        shutil.copy(dataset_dir / f"{name}.parquet", folder / f"{name}.parquet")
    shutil.copy(dataset_dir / "segments.yaml", folder / "segments.yaml")
    (folder / "experiment.yaml").write_text(EXPERIMENT)
    ref = per_user_reference(dataset_dir)
    cust = pd.read_parquet(folder / "customers.parquet")
    noise = np.random.default_rng(5).normal(0, 40, len(cust))
    cust["revenue_prev"] = cust.user_id.map(ref.revenue).fillna(0).to_numpy() + noise
    cust.to_parquet(folder / "customers.parquet")
    return folder


def _json(*args):
    result = runner.invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def paths(cuped_dir, tmp_path_factory):
    return _three_paths(cuped_dir, tmp_path_factory.mktemp("out"))


def _three_paths(folder, out):
    exp = str(folder / "experiment.yaml")
    assert runner.invoke(app, ["analyze", str(folder), "-e", exp, "--out", str(out)]).exit_code == 0
    results = json.loads((out / "results.json").read_text())["results"]
    power = _json("power", str(folder), "-e", exp, "--json")
    validate = _json(
        "segments", "validate", str(folder / "segments.yaml"), "--data", str(folder), "-e", exp,
        "--json",
    )  # fmt: skip
    return results, power, validate


def test_analyze_power_and_validate_report_the_same_mde(paths):
    results, power, validate = paths
    planned = {(r["segment"], r["metric"]): r["mde_rel"] for r in power["rows"]}
    checked = {(s["name"], m): v for s in validate["segments"] for m, v in s["mde_rel"].items()}
    compared = 0
    for row in results:
        key = (row["segment"], row["metric"])
        assert row["mde_rel"] == pytest.approx(planned[key], rel=1e-9, abs=0), key
        if row["segment"] != "all":
            assert row["mde_rel"] == pytest.approx(checked[key], rel=1e-9, abs=0), key
            compared += 1
    assert compared == 3 * 4


def _reference_d(n_c, n_t, alternative="two-sided"):
    engine = NormalIndPower()

    def gap(d):
        return engine.power(d, n_c, 0.05, ratio=n_t / n_c, alternative=alternative) - 0.8

    return brentq(gap, 1e-9, 50, xtol=1e-15, rtol=1e-15)


def test_the_cuped_cell_matches_an_independent_reference(cuped_dir, paths):
    results, power, _ = paths
    df = per_user_reference(cuped_dir)
    cust = pd.read_parquet(cuped_dir / "customers.parquet").set_index("user_id")
    df["revenue_prev"] = cust.revenue_prev.reindex(df.index)
    c = df[df.seg_mobile & (df.arm == "control")]
    n_c, n_t = len(c), int((df.seg_mobile & (df.arm == "treatment")).sum())
    rho2 = np.corrcoef(c.revenue, c.revenue_prev)[0, 1] ** 2
    assert rho2 > 0.3  # the covariate matters
    sd = c.revenue.std(ddof=1)
    expected = _reference_d(n_c, n_t) * sd * np.sqrt(1 - rho2) / c.revenue.mean()
    row = next(r for r in results if (r["segment"], r["metric"]) == ("mobile", "revenue_per_user"))
    assert row["mde_rel"] == pytest.approx(expected, rel=1e-8)
    plan = next(
        r for r in power["rows"] if (r["segment"], r["metric"]) == ("mobile", "revenue_per_user")
    )
    assert plan["cuped_variance_reduction"] == pytest.approx(rho2, rel=1e-9)
    # a one-sided metric's MDE is the one-sided test's (statsmodels' "larger")
    down = next(r for r in results if (r["segment"], r["metric"]) == ("mobile", "spend_down"))
    one = _reference_d(n_c, n_t, "larger") * sd / c.revenue.mean()
    assert down["mde_rel"] == pytest.approx(one, rel=1e-8)
