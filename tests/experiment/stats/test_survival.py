"""Kaplan–Meier from grouped counts: against lifelines and a pandas reimplementation."""

import numpy as np
import pandas as pd
import pytest

from experiment.stats.survival import (
    expected_events,
    kaplan_meier,
    pointwise_interval,
    survival_difference,
)


def _data(seed: int, n: int = 400, window: int = 20):
    """Per-user (time, event) with censoring at each user's own follow-up."""
    rng = np.random.default_rng(seed)
    event_time = rng.geometric(0.06, n)
    follow = rng.integers(1, window + 1, n)
    time = np.minimum(event_time, follow)
    return time, event_time <= follow, window


def _counts(time, event, window):
    events = np.bincount(time[event], minlength=window + 1).astype(float)
    exits = np.bincount(time[~event], minlength=window + 1).astype(float)
    return events, exits


def _pandas_km(time, event, window):
    """Product-limit and Greenwood from the per-user frame, as a textbook loop over times."""
    frame = pd.DataFrame({"t": time, "e": event})
    s, g, out_s, out_v = 1.0, 0.0, [], []
    for t in range(window + 1):
        n = int((frame.t >= t).sum())
        d = int(((frame.t == t) & frame.e).sum())
        if n > 0:
            s *= 1 - d / n
            g += d / (n * (n - d)) if n > d else 0.0
        out_s.append(s if n > 0 else np.nan)
        out_v.append(s * s * g if n > 0 else np.nan)
    return np.asarray(out_s), np.asarray(out_v)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kaplan_meier_equals_a_pandas_reimplementation(seed):
    time, event, window = _data(seed)
    curve = kaplan_meier(*_counts(time, event, window))
    ref_s, ref_v = _pandas_km(time, event, window)
    np.testing.assert_allclose(curve.survival, ref_s, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(curve.variance, ref_v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", [4, 5])
def test_kaplan_meier_equals_lifelines(seed):
    lifelines = pytest.importorskip("lifelines")
    time, event, window = _data(seed)
    curve = kaplan_meier(*_counts(time, event, window))
    fitter = lifelines.KaplanMeierFitter().fit(time, event)
    ref = fitter.survival_function_at_times(np.arange(window + 1)).to_numpy()
    observed = ~np.isnan(curve.survival)
    np.testing.assert_allclose(curve.survival[observed], ref[observed], rtol=1e-9, atol=1e-12)
    # lifelines' Greenwood sum (its exponential-form CI uses it): var / S² at event times
    table = fitter.event_table
    d, n = table["observed"].to_numpy(), table["at_risk"].to_numpy()
    greenwood = np.cumsum(np.where(n > d, d / (n * (n - d)), 0.0))
    at = table.index.to_numpy().astype(int)
    np.testing.assert_allclose(curve.variance[at] / curve.survival[at] ** 2, greenwood, rtol=1e-9)


def test_kaplan_meier_without_censoring_is_the_share_still_without_the_event():
    time = np.asarray([1, 1, 2, 3, 3, 3, 5, 5])
    curve = kaplan_meier(*_counts(time, np.ones(8, bool), 5))
    for t in range(6):
        share = np.mean(time > t)
        assert curve.survival[t] == pytest.approx(share, abs=1e-12)
        assert curve.variance[t] == pytest.approx(share * (1 - share) / 8, abs=1e-12)


def test_kaplan_meier_is_vectorised_over_leading_axes():
    a, b = _data(6), _data(7)
    both = kaplan_meier(
        np.stack([_counts(*a)[0], _counts(*b)[0]]), np.stack([_counts(*a)[1], _counts(*b)[1]])
    )
    np.testing.assert_array_equal(both.survival[1], kaplan_meier(*_counts(*b)).survival)


def test_kaplan_meier_rejects_bad_counts():
    with pytest.raises(ValueError, match="same shape"):
        kaplan_meier([1, 2], [1])
    with pytest.raises(ValueError, match=">= 0"):
        kaplan_meier([1, -2], [1, 0])


def test_survival_difference_is_a_z_test_on_greenwood_variances():
    from scipy import stats

    c = kaplan_meier(*_counts(*_data(8)))
    t = kaplan_meier(*_counts(*_data(9)))
    diff = survival_difference(c[10:11], t[10:11], alpha=0.1)
    se = np.sqrt(c.variance[10] + t.variance[10])
    z = (t.survival[10] - c.survival[10]) / se
    assert diff.p_value[0] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert diff.ci_high[0] - diff.effect[0] == pytest.approx(stats.norm.isf(0.05) * se, rel=1e-9)
    low, high = pointwise_interval(c, alpha=0.1)
    assert np.all((low <= c.survival + 1e-15) | np.isnan(c.survival))
    assert np.nanmax(high) <= 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_expected_events_are_the_log_rank_expectations_of_a_per_user_loop(seed):
    """Mantel's E_a(t): per time, arm a's users at risk times the pooled event share."""
    tc, ec, window = _data(seed)
    tt, et, _ = _data(seed + 10, n=300)
    got_c, got_t = expected_events(
        kaplan_meier(*_counts(tc, ec, window)), kaplan_meier(*_counts(tt, et, window))
    )
    frame = pd.DataFrame({"t": np.r_[tc, tt], "e": np.r_[ec, et], "arm": [0] * 400 + [1] * 300})
    want = np.zeros((2, window + 1))
    for t in range(window + 1):
        risk = frame[frame.t >= t]
        d = int(((risk.t == t) & risk.e).sum())
        for arm in (0, 1):
            want[arm, t] = (risk.arm == arm).sum() * d / len(risk) if len(risk) else 0.0
    np.testing.assert_allclose(got_c, np.cumsum(want[0]), rtol=1e-12)
    np.testing.assert_allclose(got_t, np.cumsum(want[1]), rtol=1e-12)
    # one event time: K · n_a / N, the 2x2 table's expected count
    none_c = kaplan_meier([0, 5, 0], [0, 0, 95])
    none_t = kaplan_meier([0, 1, 0], [0, 0, 49])
    assert expected_events(none_c, none_t)[1][-1] == pytest.approx(6 * 50 / 150)
