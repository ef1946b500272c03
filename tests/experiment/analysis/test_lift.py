"""The analysis step's wiring of the Bayesian, sequential and heterogeneity methods.

Pure analysis: the cell sums are built in memory from seeded per-user arrays
(``tests.fixtures.sums``), no dataset and no engine.
"""

import math

import numpy as np
import pytest
import yaml
from scipy import stats

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.stats import welch_ttest
from segments import parse_segments
from tests.fixtures.dataset import EXPERIMENT_YAML, SEGMENTS_YAML
from tests.fixtures.sums import Values, cell_sums

EXCLUSIVE = """\
exclusive: true
segments:
  - {name: mobile, where: "device == 'mobile'"}
  - {name: desktop, where: "device == 'desktop'"}
"""


def _users(n_users: int = 3000, rng: int = 0) -> dict[str, np.ndarray]:
    """Seeded per-user arm, attributes and the three metrics' values."""
    gen = np.random.default_rng(rng)
    impressions = gen.poisson(9.0, n_users).astype(float)
    purchases = gen.poisson(0.35, n_users).astype(float)
    return {
        "arm": gen.choice(["control", "treatment"], n_users),
        "device": gen.choice(["mobile", "desktop", "tablet"], n_users),
        "orders_90d": gen.poisson(1.0, n_users).astype(float),
        "days_since_last_login": gen.integers(0, 60, n_users),
        "conversion": (purchases > 0).astype(float),
        "clicks": gen.binomial(impressions.astype(int), 0.15).astype(float),
        "impressions": impressions,
        "revenue": np.where(purchases > 0, gen.lognormal(3.5, 0.8, n_users) * purchases, 0.0),
    }


def _config(**extra: object) -> ExperimentConfig:
    doc = yaml.safe_load(EXPERIMENT_YAML)
    del doc["segments"]
    return ExperimentConfig.model_validate({**doc, **extra})


def _analyse(u: dict[str, np.ndarray], members: dict[str, np.ndarray], config, segment_set):
    metrics: dict[str, Values] = {
        "conversion": u["conversion"],
        "ctr": (u["clicks"], u["impressions"]),
        "revenue_per_user": u["revenue"],
    }
    cells = cell_sums(metrics, arm=u["arm"], members=members)
    return cells, analyze_cells(cells, config, segment_set)


@pytest.fixture(scope="module")
def analysed():
    config = _config(sequential=True)
    segment_set = parse_segments(yaml.safe_load(EXCLUSIVE), source="segments.yaml")
    u = _users()
    mobile, desktop = u["device"] == "mobile", u["device"] == "desktop"
    everyone = np.ones(mobile.size, bool)
    members = {"all": everyone, "mobile": mobile, "desktop": desktop, "rest": ~mobile & ~desktop}
    cells, results = _analyse(u, members, config, segment_set)
    return config, cells, results


def test_chance_to_win_matches_beta_posterior_monte_carlo(analysed):
    _config, cells, results = analysed
    conv = cells.metrics["conversion"]
    rng = np.random.default_rng(11)
    draws = 400_000
    for si, segment in enumerate(cells.segments):
        row = next(r for r in results.results if r.segment == segment and r.metric == "conversion")
        s = conv.n[si] * conv.mean[si]
        post_c = rng.beta(1 + s[0], 1 + conv.n[si, 0] - s[0], draws)
        post_t = rng.beta(1 + s[1], 1 + conv.n[si, 1] - s[1], draws)
        p = float((post_t > post_c).mean())
        assert row.chance_to_win == pytest.approx(
            p, abs=3.29 * math.sqrt(p * (1 - p) / draws) + 1e-4
        )
        loss = float(np.maximum(post_c - post_t, 0).mean())
        assert row.expected_loss == pytest.approx(loss, rel=0.02, abs=1e-5)


def test_sequential_interval_contains_fixed_horizon_interval(analysed):
    _config, _cells, results = analysed
    finite = [r for r in results.results if math.isfinite(r.ci_low) and math.isfinite(r.seq_ci_low)]
    assert len(finite) == len(results.results)
    for row in finite:
        assert row.seq_ci_low <= row.ci_low
        assert row.seq_ci_high >= row.ci_high
        assert 0 <= row.seq_p_value <= 1
        assert "confidence sequence" in row.method


def test_heterogeneity_matches_statsmodels_meta_analysis(analysed):
    from statsmodels.stats.meta_analysis import combine_effects

    config, cells, results = analysed
    assert cells.segments == ("all", "mobile", "desktop", "rest")
    assert {h.metric for h in results.heterogeneity} == {m.name for m in config.metrics}
    conv = cells.metrics["conversion"]
    lift = welch_ttest(
        type(conv)(n=conv.n[:, 0], mean=conv.mean[:, 0], m2=conv.m2[:, 0]),
        type(conv)(n=conv.n[:, 1], mean=conv.mean[:, 1], m2=conv.m2[:, 1]),
    )
    ref = combine_effects(lift.lift_rel[1:], lift.se_rel[1:] ** 2)
    het = next(h for h in results.heterogeneity if h.metric == "conversion")
    assert het.q == pytest.approx(ref.q, rel=1e-9)
    assert het.p_value == pytest.approx(stats.chi2.sf(ref.q, 2), rel=1e-9)
    assert het.i2 == pytest.approx(max(ref.i2, 0.0), abs=1e-12)
    assert het.segments == 3


def test_heterogeneity_skipped_for_overlapping_segments():
    config = _config()
    segment_set = parse_segments(yaml.safe_load(SEGMENTS_YAML), source="segments.yaml")
    u = _users()
    members = {
        "all": np.ones(u["arm"].size, bool),
        "buyers": u["orders_90d"] >= 1,
        "mobile": u["device"] == "mobile",
        "lapsed_desktop": (u["days_since_last_login"] >= 14) & (u["device"] != "mobile"),
    }
    _cells, results = _analyse(u, members, config, segment_set)
    assert results.heterogeneity == ()
    assert all(math.isnan(r.seq_p_value) for r in results.results)  # sequential is off
    assert all(0 <= r.chance_to_win <= 1 for r in results.results if r.reason == "")


def test_mde_and_underpowered_follow_statsmodels_power(analysed):
    from statsmodels.stats.power import NormalIndPower

    config, cells, results = analysed
    rev = cells.metrics["revenue_per_user"]
    for si, segment in enumerate(cells.segments):
        row = next(
            r for r in results.results if r.segment == segment and r.metric == "revenue_per_user"
        )
        n_c, n_t = cells.units[si]
        # the control arm's per-user sd times statsmodels' detectable standardised effect
        sd = math.sqrt(rev.var[si, 0])
        d = NormalIndPower().solve_power(nobs1=n_c, ratio=n_t / n_c, alpha=config.alpha, power=0.8)
        assert row.mde_rel == pytest.approx(d * sd / rev.mean[si, 0], rel=1e-4)
        assert row.underpowered == (row.mde_rel > config.target_lift)
