"""Impact and time to decision, against numpy, scipy and statsmodels references."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from experiment.analysis import analyze_cells
from experiment.analysis.privacy import hidden_segments, suppress
from experiment.config import ExperimentConfig
from experiment.results import AnalysisResults, ResultRow
from experiment.sums import CellSums
from tests.fixtures.sums import cell_sums

N_C, N_T = 3000, 4500  # unequal arms: the split must carry into the sample size
SPAN = 10.0  # days between the first and the last assignment
ALPHA = 0.05
METRICS = [
    {"name": "conversion", "kind": "proportion", "event": "purchase"},
    {"name": "revenue", "kind": "mean", "event": "purchase", "value": "revenue"},
    {"name": "ctr", "kind": "ratio", "numerator": {"event": "click"},
     "denominator": {"event": "impression"}},
]  # fmt: skip
IMPACT = ("impact_users", "users_per_day", "impact_window", "impact_window_low",
          "impact_window_high", "impact_30d", "impact_30d_low", "impact_30d_high",
          "extra_users_needed", "extra_days_needed")  # fmt: skip


def _config(**extra: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"name": "imp", "metrics": METRICS, "alpha": ALPHA, "correction": "none", **extra}
    )


@pytest.fixture(scope="module")
def users() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(14)
    arm = np.array(["control"] * N_C + ["treatment"] * N_T)
    treated = arm == "treatment"
    n = N_C + N_T
    impressions = rng.poisson(20, n).astype(float)
    return {
        "arm": arm,
        "half": rng.random(n) < 0.5,
        "conversion": (rng.random(n) < np.where(treated, 0.06, 0.05)).astype(float),
        "revenue": rng.exponential(np.where(treated, 11.0, 10.0)),
        "impressions": impressions,
        "clicks": rng.binomial(impressions.astype(int), np.where(treated, 0.11, 0.10)).astype(
            float
        ),
    }


def _cells(u: dict[str, np.ndarray], span: float) -> CellSums:
    cells = cell_sums(
        {
            "conversion": u["conversion"],
            "revenue": u["revenue"],
            "ctr": (u["clicks"], u["impressions"]),
        },
        arm=u["arm"],
        members={"all": np.ones(len(u["arm"]), dtype=bool), "half": u["half"]},
    )
    return replace(cells, assignment_days=span)


def _rows(results: AnalysisResults) -> dict[tuple[str, str], ResultRow]:
    return {(r.segment, r.metric): r for r in results.results}


def test_impact_of_means_and_proportions_equals_scipy_welch_interval_times_users(users):
    rows = _rows(analyze_cells(_cells(users, SPAN), _config(), None))
    for segment, member in (
        ("all", np.ones(len(users["arm"]), dtype=bool)),
        ("half", users["half"]),
    ):
        c = member & (users["arm"] == "control")
        t = member & (users["arm"] == "treatment")
        n_users = member.sum()
        for metric in ("conversion", "revenue"):
            y = users[metric]
            ci = stats.ttest_ind(y[t], y[c], equal_var=False).confidence_interval(1 - ALPHA)
            lift = y[t].mean() - y[c].mean()
            row = rows[segment, metric]
            assert row.impact_users == n_users
            assert row.users_per_day == pytest.approx(n_users / SPAN, rel=1e-12)
            assert row.impact_window == pytest.approx(lift * n_users, rel=1e-9)
            assert row.impact_window_low == pytest.approx(ci.low * n_users, rel=1e-9)
            assert row.impact_window_high == pytest.approx(ci.high * n_users, rel=1e-9)
            per_30 = n_users / SPAN * 30
            assert row.impact_30d == pytest.approx(lift * per_30, rel=1e-9)
            assert row.impact_30d_low == pytest.approx(ci.low * per_30, rel=1e-9)
            assert row.impact_30d_high == pytest.approx(ci.high * per_30, rel=1e-9)


def test_ratio_impact_is_the_numerator_change_at_the_control_denominator(users):
    row = _rows(analyze_cells(_cells(users, SPAN), _config(), None))["all", "ctr"]
    c, t = users["arm"] == "control", users["arm"] == "treatment"
    y, x = users["clicks"], users["impressions"]
    lift = y[t].sum() / x[t].sum() - y[c].sum() / x[c].sum()
    n_users = len(y)
    assert row.impact_window == pytest.approx(lift * x[c].mean() * n_users, rel=1e-9)
    assert row.impact_window_low == pytest.approx(row.ci_abs_low * x[c].mean() * n_users, rel=1e-9)
    assert row.impact_30d == pytest.approx(row.impact_window * 30 / SPAN, rel=1e-12)


def test_days_needed_is_statsmodels_sample_size_over_daily_traffic(users):
    rows = _rows(analyze_cells(_cells(users, SPAN), _config(target_lift=0.05), None))
    checked = 0
    for segment, member in (
        ("all", np.ones(len(users["arm"]), dtype=bool)),
        ("half", users["half"]),
    ):
        c = member & (users["arm"] == "control")
        t = member & (users["arm"] == "treatment")
        n_c, n_t = c.sum(), t.sum()
        for metric in ("conversion", "revenue"):
            row = rows[segment, metric]
            assert row.underpowered
            y = users[metric][c]
            effect = 0.05 * y.mean() / y.std(ddof=1)
            nobs1 = NormalIndPower().solve_power(
                effect_size=effect, alpha=ALPHA, power=0.8, ratio=n_t / n_c
            )
            extra = nobs1 * (1 + n_t / n_c) - n_c - n_t
            traffic = (n_c + n_t) / SPAN
            assert abs(row.extra_users_needed - extra) <= 1.0  # rounded up to whole users
            assert row.extra_users_needed == math.ceil(row.extra_users_needed)
            assert row.extra_days_needed == pytest.approx(
                row.extra_users_needed / traffic, rel=1e-12
            )
            assert row.extra_days_needed == pytest.approx(extra / traffic, abs=1.0 / traffic)
            checked += 1
    assert checked == 4


def test_powered_rows_have_no_time_to_decision(users):
    results = analyze_cells(_cells(users, SPAN), _config(target_lift=5.0), None)
    for row in results.results:
        assert not row.underpowered
        assert math.isnan(row.extra_users_needed)
        assert math.isnan(row.extra_days_needed)


@pytest.mark.parametrize("span", [0.0, math.nan])
def test_fixed_or_unknown_base_gives_window_impact_only(users, span):
    results = analyze_cells(_cells(users, span), _config(target_lift=0.05), None)
    for row in results.results:
        assert math.isfinite(row.impact_window)
        assert math.isfinite(row.extra_users_needed) == row.underpowered
        for name in ("users_per_day", "impact_30d", "impact_30d_low", "impact_30d_high",
                     "extra_days_needed"):  # fmt: skip
            assert math.isnan(getattr(row, name)), name


def test_span_under_a_day_counts_as_one_day(users):
    row = _rows(analyze_cells(_cells(users, 0.25), _config(), None))["all", "revenue"]
    assert row.users_per_day == N_C + N_T
    assert row.impact_30d == pytest.approx(row.impact_window * 30, rel=1e-12)


def test_suppression_withholds_impact_and_time_to_decision(users):
    results = analyze_cells(_cells(users, SPAN), _config(target_lift=0.05), None)
    half = [r for r in results.results if r.segment == "half" and r.metric != "ctr"]
    assert all(math.isfinite(getattr(r, f)) for r in half for f in IMPACT)
    rows, _segments, _srm = suppress(
        list(results.results),
        results.segments,
        results.srm,
        hidden_segments(results.segments, 10**6),
    )
    doc = json.loads(replace(results, results=tuple(rows)).to_json())
    for row in doc["results"]:
        if row["segment"] == "half":
            assert all(row[f] is None for f in IMPACT)
        else:
            assert all(row[f] is not None for f in IMPACT[:-2])
