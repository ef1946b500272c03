"""Metric direction: ``higher_is_better: false`` flips wins, decisions, guardrails, bayes."""

import datetime as dt
from typing import Any

import numpy as np
import pytest
from scipy import stats

from experiment.analysis import analyze_cells
from experiment.analysis.bayes import bayes
from experiment.config import ExperimentConfig
from experiment.results import AnalysisResults, ResultRow
from experiment.results.decision import decisions
from experiment.results.verdict import verdict
from experiment.stats import welch_ttest
from experiment.sums import CellSums, MeanSums
from tests.fixtures.sums import cell_sums, delta_rel_bound

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
Z = 3.29
DRAWS = 400_000
N = 6000  # users per arm


def _config(metrics: list[dict[str, Any]]) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"name": "d", "metrics": metrics})


UNSUBSCRIBES = {"name": "unsubscribes", "kind": "proportion", "event": "unsubscribe",
                "higher_is_better": False, "guardrail": {"max_drop": 0.02}}  # fmt: skip
REFUNDS = {"name": "refunds", "kind": "mean", "event": "refund", "value": "amount",
           "higher_is_better": False, "guardrail": {"max_drop": 0.02}}  # fmt: skip
CONVERSION = {"name": "conversion", "kind": "proportion", "event": "purchase"}


def _planted(unsub: tuple[float, float], refunds: tuple[float, float], seed: int) -> CellSums:
    """Two arms of ``N`` users; rates and mean refunds (control, treatment) as planted."""
    rng = np.random.default_rng(seed)
    arm = np.repeat(np.array(["control", "treatment"]), N)
    treated = arm == "treatment"
    conversion = (rng.random(2 * N) < np.where(treated, 0.14, 0.10)).astype(float)
    unsubscribes = (rng.random(2 * N) < np.where(treated, unsub[1], unsub[0])).astype(float)
    amount = rng.exponential(np.where(treated, refunds[1], refunds[0]))
    return cell_sums(
        {"conversion": conversion, "unsubscribes": unsubscribes, "refunds": amount},
        arm=arm,
        members={"all": np.ones(2 * N, dtype=bool)},
    )


def _rows(results: AnalysisResults) -> dict[str, ResultRow]:
    return {r.metric: r for r in results.results}


def test_planted_decrease_of_lower_is_better_primary_ships():
    # Unsubscribes fall 8% -> 5%; refunds do not move.
    cells = _planted((0.08, 0.05), (3.0, 3.0), seed=1)
    results = analyze_cells(cells, _config([UNSUBSCRIBES, REFUNDS]), None)
    rows = _rows(results)
    unsub = rows["unsubscribes"]
    assert unsub.lift_rel < 0
    assert unsub.significant
    assert unsub.higher_is_better is False
    assert verdict(unsub) == "win"
    assert unsub.chance_to_win > 0.5
    assert not unsub.guardrail_breached
    assert not rows["refunds"].guardrail_breached
    [decision] = decisions(results)
    assert decision.kind == "ship"
    assert "lower is better" in decision.reason


def test_planted_increase_of_lower_is_better_guardrail_blocks():
    # Conversion wins (10% -> 14%), but unsubscribes rise 5% -> 8% and refunds 3 -> 3.6.
    cells = _planted((0.05, 0.08), (3.0, 3.6), seed=2)
    results = analyze_cells(cells, _config([CONVERSION, UNSUBSCRIBES, REFUNDS]), None)
    rows = _rows(results)
    assert verdict(rows["conversion"]) == "win"
    for name in ("unsubscribes", "refunds"):
        row = rows[name]
        assert row.lift_rel > 0.02
        assert verdict(row) == "loss"
        assert row.guardrail_breached
        assert row.chance_to_win < 0.5
    [decision] = decisions(results)
    assert decision.kind == "don't ship"
    assert "unsubscribes (lower is better)" in decision.reason


def test_same_data_higher_is_better_reads_the_other_way():
    cells = _planted((0.05, 0.08), (3.0, 3.6), seed=2)
    up = {**REFUNDS, "higher_is_better": True}
    row = _rows(analyze_cells(cells, _config([up]), None))["refunds"]
    down = _rows(analyze_cells(cells, _config([REFUNDS]), None))["refunds"]
    assert verdict(row) == "win"
    assert not row.guardrail_breached
    assert row.higher_is_better is True
    assert row.chance_to_win == pytest.approx(1 - down.chance_to_win, rel=1e-9)
    # Everything but the read-outs that depend on direction is the same.
    for name in ("lift_rel", "ci_low", "ci_high", "p_value", "p_adjusted", "significant"):
        assert getattr(row, name) == getattr(down, name)


# ------------------------------------------------------------------ guardrail reference
def _mean_cells(treatment_means: list[float]) -> CellSums:
    k = len(treatment_means)
    n = np.full((k, 2), 2000.0)
    means = np.column_stack([np.full(k, 10.0), treatment_means])
    refunds = MeanSums(n=n, mean=means, m2=np.full((k, 2), 25.0 * 1999.0))
    return CellSums(
        segments=("all", *(f"s{i}" for i in range(1, k))),
        arms=("control", "treatment"),
        units=n,
        metrics={"refunds": refunds},
        window_start=START,
        window_end=START + dt.timedelta(days=14),
    )


def _bound(cells: CellSums, metric: str) -> np.ndarray:
    sums = cells.metrics[metric]
    assert isinstance(sums, MeanSums)
    return delta_rel_bound(sums, 0.05, upper=False)


@pytest.mark.parametrize("max_drop", [0.0, 0.02, 0.05])
def test_lower_is_better_guardrail_matches_one_sided_reference(max_drop):
    cells = _mean_cells([9.0, 9.9, 10.1, 10.5, 10.9, 11.2])
    metric = {**REFUNDS, "guardrail": {"max_drop": max_drop}}
    results = analyze_cells(cells, _config([metric]), None)
    lower = _bound(cells, "refunds")
    got = [r.guardrail_breached for r in results.results]
    assert got == list(lower > max_drop)
    assert any(got)
    assert not all(got)


# ------------------------------------------------------------------ chance to win reference
def _beta_draws(rng, sums: MeanSums):
    s = sums.mean * sums.n
    return rng.beta(1 + s[:, None], 1 + sums.n[:, None] - s[:, None], (s.size, DRAWS))


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_beta_binomial_read_outs_follow_direction_against_draws(higher_is_better):
    rng = np.random.default_rng(31)
    n = np.array([[1000.0, 1000.0], [400.0, 3000.0], [50.0, 60.0]])
    rate = np.array([[0.03, 0.045], [0.10, 0.08], [0.2, 0.2]])
    sums = MeanSums.from_power_sums(n, np.round(rate * n), np.round(rate * n))
    res = bayes(sums, "proportion", 0, 1, welch_ttest(sums[:, 0], sums[:, 1]), cuped=False,
                higher_is_better=higher_is_better)  # fmt: skip
    p_c, p_t = _beta_draws(rng, sums[:, 0]), _beta_draws(rng, sums[:, 1])
    better = p_t - p_c if higher_is_better else p_c - p_t  # > 0: treatment wins
    win = (better > 0).mean(axis=1)
    assert np.all(np.abs(res.chance_to_win - win) <= Z * np.sqrt(win * (1 - win) / DRAWS))
    for got, loss in ((res.expected_loss, -better), (res.expected_loss_control, better)):
        positive = np.maximum(0.0, loss)
        assert np.all(np.abs(got - positive.mean(axis=1)) <= Z * positive.std(axis=1) / DRAWS**0.5)


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_normal_read_outs_follow_direction_against_closed_form(higher_is_better):
    n = np.full((2, 2), 800.0)
    sums = MeanSums(n=n, mean=np.array([[3.0, 3.2], [3.0, 2.9]]), m2=np.full((2, 2), 4.0 * 799))
    lift = welch_ttest(sums[:, 0], sums[:, 1])
    res = bayes(sums, "mean", 0, 1, lift, cuped=False, higher_is_better=higher_is_better)
    d = lift.lift_abs if higher_is_better else -lift.lift_abs  # > 0: treatment wins
    expected = stats.norm.sf(0, d, lift.se_abs)
    assert res.chance_to_win == pytest.approx(expected, rel=1e-12)
    loss = [stats.norm.expect(lambda x: max(0.0, -x), loc=m, scale=s) for m, s in
            zip(d, lift.se_abs, strict=True)]  # fmt: skip
    assert res.expected_loss == pytest.approx(loss, rel=1e-7)
