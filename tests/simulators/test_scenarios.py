"""The shipped scenarios: each runs end to end, A/A is null, SaaS effects are recovered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy import stats
from typer.testing import CliRunner

from experiment.cli import app
from simulators import load_scenario, simulate
from simulators.catalog import BUILTIN_DIR
from simulators.effects import build_multipliers
from simulators.journeys import TimeProfile, simulate_day
from simulators.outcomes import PotentialOutcomes
from simulators.population import draw_traits
from simulators.scenario import EffectSpec, NoveltySpec
from simulators.schema import EVENTS

runner = CliRunner()
SCENARIOS = ["aa", "ecommerce", "media", "mosaic", "saas", "split", "uniform"]


def _cli(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_simulates_and_analyzes_with_its_own_files(tmp_path: Path, name: str):
    data, out = tmp_path / "d", tmp_path / "r"
    _cli("simulate", "--scenario", name, "--users", "3000", "--days", "3", "--out", str(data))
    _cli("analyze", str(data), "--experiment", str(data / "experiment.yaml"), "--out", str(out))
    doc = json.loads((out / "results.json").read_text())
    truth = json.loads((data / "truth.json").read_text())
    keys = {(r["segment"], r["metric"], r["arm"]) for r in doc["results"]}
    assert keys == {(t["segment"], t["metric"], t["arm"]) for t in truth["effects"]}


def test_aa_truth_is_exactly_zero(tmp_path: Path):
    simulate("aa", users=5000, days=5, seed=2, out=tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["effects"]
    for row in truth["effects"]:
        assert row["lift_abs"] == 0.0
        assert row["mean_treatment"] == row["mean_control"]


@pytest.mark.slow
def test_saas_analysis_finds_the_sign_of_every_clear_planted_effect(tmp_path: Path):
    data, out = tmp_path / "d", tmp_path / "r"
    _cli("simulate", "--scenario", "saas", "--users", "200000", "--days", "7", "--out", str(data))
    _cli("analyze", str(data), "--experiment", str(data / "experiment.yaml"), "--out", str(out))
    doc = json.loads((out / "results.json").read_text())
    truth = json.loads((data / "truth.json").read_text())
    true = {(t["segment"], t["metric"], t["arm"]): t["lift_abs"] for t in truth["effects"]}
    z = stats.norm.isf(0.025)
    clear = 0
    for row in doc["results"]:
        se = (row["ci_abs_high"] - row["ci_abs_low"]) / (2 * z)
        lift = true[row["segment"], row["metric"], row["arm"]]
        if abs(lift) > 3 * se:
            clear += 1
            assert np.sign(row["lift_abs"]) == np.sign(lift), row
    assert clear >= 6  # the planted effects are large enough to be seen in most segments
    segments = {t["segment"] for t in truth["effects"] if t["lift_abs"]}
    assert {"high_engagement", "at_risk", "expansion"} <= segments
    zeros = [t for t in truth["effects"] if t["segment"] in {"large_accounts", "light_free_users"}]
    assert zeros
    assert all(t["lift_abs"] == 0 for t in zeros)


def test_novelty_effect_starts_larger_and_decays():
    effect = EffectSpec(segment="all", ctr=0.1, novelty=NoveltySpec(boost=1.0, days=5))

    def ctr(day: int) -> np.ndarray:
        arms = ["control", "treatment"]
        return build_multipliers([effect], {}, arms=arms, control="control", n_users=2, day=day).ctr

    assert ctr(0)[1, 0] == pytest.approx(1.2)
    assert ctr(5)[1, 0] == pytest.approx(1 + 0.1 * (1 + np.exp(-1)))
    assert ctr(60)[1, 0] == pytest.approx(1.1, abs=1e-5)
    assert ctr(0)[0].tolist() == [1.0, 1.0]


def test_latent_traits_correlate_as_configured():
    config = load_scenario("saas").config
    traits = draw_traits(config.population, config.funnel, 20_000, rng=4)
    value = traits.value_log_mean - traits.value_log_mean.mean()
    rho_pv = stats.spearmanr(traits.price_sensitivity, traits.premium_rate).statistic
    rho_ev = stats.spearmanr(traits.feature_rate, value).statistic
    assert rho_pv < -0.1  # price-value correlation -0.3
    assert rho_ev > 0.1  # engagement-value correlation 0.4
    plan = np.asarray(traits.plan_names)[traits.plan]
    premium, free = value[plan == "premium"].mean(), value[plan == "free"].mean()
    assert premium > free


def test_simulate_day_sessions_effect_uses_common_random_numbers():
    config = load_scenario("saas").config
    n = 4000
    traits = draw_traits(config.population, config.funnel, n, rng=1)
    half = np.arange(n) % 2 == 0
    mult = build_multipliers(
        [EffectSpec(segment="half", sessions=0.5, feature_use=0.3)],
        {"half": half},
        arms=["control", "treatment"],
        control="control",
        n_users=n,
    )
    outcomes = PotentialOutcomes.zeros(2, n)
    simulate_day(
        traits,
        config.funnel,
        TimeProfile.from_funnel(config.funnel, traits.device_names),
        mult,
        np.zeros(n, dtype=np.intp),
        day_start=0,
        weekday=1,
        outcomes=outcomes,
        rng=3,
    )
    control, treatment = outcomes.counts
    assert np.array_equal(control[:, ~half], treatment[:, ~half])
    for name in ("session", "login", "feature_use", "impression"):
        code = EVENTS.index(name)
        assert np.all(treatment[code, half] >= control[code, half]), name
        assert treatment[code].sum() > control[code].sum(), name


def test_churned_customers_lapse_and_come_back(tmp_path: Path):
    folder = tmp_path / "shop"
    shutil.copytree(BUILTIN_DIR / "ecommerce", folder)
    path = folder / "scenario.yaml"
    text = path.read_text()
    start = text.index("  churn:")
    end = text.index("lapsed_activity: 0.15") + len("lapsed_activity: 0.15")
    # everyone lapses after day 0 and comes back after day 1: a 1 - 0.1 dip on day 1 only
    churn = "  churn: {hazard: 1.0, reactivation: 1.0, lapsed_activity: 0.1}"
    path.write_text(text[:start] + churn + text[end:])
    simulate(folder, users=20_000, days=3, seed=1, out=tmp_path / "out")
    events = pq.read_table(tmp_path / "out" / "events.parquet")
    sessions = events.filter(pc.equal(events.column("event"), "session"))
    day = sessions.column("ts").cast(pa.int64()).to_numpy() // 86_400_000_000
    per_day = np.bincount(day - day.min(), minlength=3)
    assert per_day[1] < 0.2 * per_day[0]
    assert per_day[2] > 0.8 * per_day[0]
