"""Segment-vs-rest heterogeneity through analyze_cells: raw-data references, both scales."""

import math

import numpy as np
import pytest
import yaml
from scipy import stats

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.results import AnalysisResults
from experiment.stats import ratio_ttest
from experiment.sums import JointSums
from segments import parse_segments
from tests.fixtures.dataset import EXPERIMENT_YAML, SEGMENTS_YAML
from tests.fixtures.sums import cell_sums

EXCLUSIVE = """\
exclusive: true
segments:
  - {name: mobile, where: "device == 'mobile'"}
  - {name: desktop, where: "device == 'desktop'"}
"""


def _config(**extra):
    doc = yaml.safe_load(EXPERIMENT_YAML)
    del doc["segments"]
    return ExperimentConfig.model_validate({**doc, **extra})


def _users(n=4000, rng=0):
    gen = np.random.default_rng(rng)
    device = gen.choice(["mobile", "desktop", "tablet"], n)
    impressions = gen.poisson(9.0, n).astype(float)
    # a real interaction: mobile treated users convert more
    arm = gen.choice(["control", "treatment"], n)
    p = np.where((device == "mobile") & (arm == "treatment"), 0.45, 0.3)
    return {
        "arm": arm,
        "device": device,
        "orders_90d": gen.poisson(1.0, n).astype(float),
        "days": gen.integers(0, 60, n),
        "conversion": (gen.random(n) < p).astype(float),
        "clicks": gen.binomial(impressions.astype(int), 0.15).astype(float),
        "impressions": impressions,
        "revenue": gen.lognormal(1.0, 1.0, n) * (gen.random(n) < 0.2),
    }


def _analyse(u, members, config, segment_set):
    metrics = {
        "conversion": u["conversion"],
        "ctr": (u["clicks"], u["impressions"]),
        "revenue_per_user": u["revenue"],
    }
    cells = cell_sums(metrics, arm=u["arm"], members=members)
    return cells, analyze_cells(cells, config, segment_set)


@pytest.fixture(scope="module")
def overlapping():
    u = _users()
    members = {
        "all": np.ones(u["arm"].size, bool),
        "buyers": u["orders_90d"] >= 1,
        "mobile": u["device"] == "mobile",
        "lapsed_desktop": (u["days"] >= 14) & (u["device"] != "mobile"),
    }
    segment_set = parse_segments(yaml.safe_load(SEGMENTS_YAML), source="segments.yaml")
    _cells, results = _analyse(u, members, _config(), segment_set)
    return u, members, results


def _entry(results, metric, scale):
    return next(h for h in results.heterogeneity_tests if h.metric == metric and h.scale == scale)


def test_segment_vs_rest_equals_two_welch_tests_on_raw_users(overlapping):
    u, members, results = overlapping
    treated = u["arm"] == "treatment"
    y = u["conversion"]
    for scale in ("absolute", "relative"):
        entry = _entry(results, "conversion", scale)
        assert entry.family == f"interaction:conversion:treatment:{scale}"
        assert [t.segment for t in entry.tests] == ["buyers", "mobile", "lapsed_desktop"]
        for test in entry.tests:
            seg = members[test.segment]
            lifts, variances = [], []
            for mask in (seg, ~seg):  # the rest: everyone not in the segment
                c, t = y[mask & ~treated], y[mask & treated]
                d = t.mean() - c.mean()
                var = np.var(t, ddof=1) / t.size + np.var(c, ddof=1) / c.size
                if scale == "relative":  # log ratio of the means (Katz), delta method
                    var = np.var(t, ddof=1) / t.size / t.mean() ** 2
                    var += np.var(c, ddof=1) / c.size / c.mean() ** 2
                    d = math.log(t.mean() / c.mean())
                lifts.append(d)
                variances.append(var)
            z = (lifts[0] - lifts[1]) / math.sqrt(sum(variances))
            if scale == "absolute":
                assert test.lift_rest == pytest.approx(lifts[1], rel=1e-9)
                assert test.difference == pytest.approx(lifts[0] - lifts[1], rel=1e-9)
            else:
                assert test.lift_rest == pytest.approx(math.expm1(lifts[1]), rel=1e-9)
                assert test.z == pytest.approx(z, rel=1e-9)
            assert test.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-7)
            assert test.users_segment + test.users_rest == y.size
        p = sorted(t.p_value for t in entry.tests)
        holm = np.maximum.accumulate([min(1.0, (3 - i) * v) for i, v in enumerate(p)])
        assert sorted(t.p_adjusted for t in entry.tests) == pytest.approx(holm)
        assert entry.family_size == 3
        assert math.isnan(entry.q)  # overlapping: no Cochran's Q
        assert entry.q_segments == 0
    mobile = next(
        t for t in _entry(results, "conversion", "absolute").tests if t.segment == "mobile"
    )
    assert mobile.significant  # the planted interaction is found


def test_segment_vs_rest_of_a_ratio_metric_equals_the_rest_computed_directly(overlapping):
    u, members, results = overlapping
    treated = u["arm"] == "treatment"
    rest = ~members["buyers"]
    ref = ratio_ttest(
        JointSums.from_values(u["clicks"][rest & ~treated], u["impressions"][rest & ~treated]),
        JointSums.from_values(u["clicks"][rest & treated], u["impressions"][rest & treated]),
        alpha=0.05,
    )
    test = next(t for t in _entry(results, "ctr", "relative").tests if t.segment == "buyers")
    assert test.lift_rest == pytest.approx(ref.lift_rel[0], rel=1e-9)


def test_exclusive_sets_get_cochran_q_on_both_scales_and_round_trip_json():
    from statsmodels.stats.meta_analysis import combine_effects

    u = _users(rng=1)
    mobile, desktop = u["device"] == "mobile", u["device"] == "desktop"
    members = {
        "all": np.ones(mobile.size, bool),
        "mobile": mobile,
        "desktop": desktop,
        "rest": ~mobile & ~desktop,
    }
    segment_set = parse_segments(yaml.safe_load(EXCLUSIVE), source="segments.yaml")
    _cells, results = _analyse(u, members, _config(), segment_set)
    entry = _entry(results, "conversion", "absolute")
    est = [t.lift_segment for t in entry.tests]
    y, treated = u["conversion"], u["arm"] == "treatment"
    var = [
        np.var(y[m & treated], ddof=1) / (m & treated).sum()
        + np.var(y[m & ~treated], ddof=1) / (m & ~treated).sum()
        for m in (mobile, desktop, ~mobile & ~desktop)
    ]
    ref = combine_effects(np.array(est), np.array(var))
    assert entry.q == pytest.approx(ref.q, rel=1e-9)
    assert entry.q_p_value == pytest.approx(stats.chi2.sf(ref.q, 2), rel=1e-9)
    assert entry.q_segments == 3
    old = next(h for h in results.heterogeneity if h.metric == "conversion")
    assert old.scale == "relative"  # the old block: relative lifts, unchanged
    assert _entry(results, "conversion", "relative").q_segments == 3  # log ratios
    back = AnalysisResults.from_json_dict(yaml.safe_load(results.to_json()))
    assert back.heterogeneity_tests[0].tests[0].p_value == pytest.approx(
        results.heterogeneity_tests[0].tests[0].p_value
    )
    assert len(back.heterogeneity_tests) == 3 * 2  # metrics × scales, one treatment arm
