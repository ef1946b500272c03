"""The value projection: its closed form, its delta-method variance, the observed window."""

import numpy as np
import pytest

from experiment.stats.ltv import project_value, value_difference


def _sums(y1, y2):
    y1, y2 = np.asarray(y1, float), np.asarray(y2, float)
    return [y1.size, y1.sum(), y2.sum(), (y1 * y1).sum(), (y2 * y2).sum(), (y1 * y2).sum()]


def _by_loop(m1, m2, window, horizon):
    """Value by summing the projected daily rates one day at a time."""
    h = window / 2
    g = min(1.0, (m2 / m1) ** (1 / h))
    rate = m2 / h
    total = m1 + m2
    for t in range(window, horizon):
        total += rate * g ** (t - (window - h / 2))
    return total


def test_projection_equals_the_day_by_day_sum_of_decaying_rates():
    rng = np.random.default_rng(1)
    y1 = rng.exponential(4.0, 500)
    y2 = rng.exponential(3.0, 500)
    p = project_value(_sums(y1, y2), window=28, horizon=90)
    assert p.decay < 1
    assert float(p.value) == pytest.approx(_by_loop(y1.mean(), y2.mean(), 28, 90), rel=1e-9)


def test_delta_variance_equals_the_closed_form_when_spend_does_not_decay():
    rng = np.random.default_rng(2)
    y1 = rng.exponential(3.0, 800)
    y2 = y1 * 0.5 + rng.exponential(2.0, 800)  # correlated halves, m2 > m1: g = 1
    p = project_value(_sums(y1, y2), window=10, horizon=30)
    assert float(p.decay) == 1.0
    # value = m1 + m2 (1 + 20/5): gradient (1, 5)
    cov = np.cov(np.vstack([y1, y2]), ddof=1) / y1.size
    grad = np.asarray([1.0, 5.0])
    assert float(p.value) == pytest.approx(y1.mean() + 5 * y2.mean(), rel=1e-12)
    assert float(p.variance) == pytest.approx(grad @ cov @ grad, rel=1e-6)


def test_horizon_inside_the_window_is_the_observed_value():
    y1, y2 = [1.0, 0.0, 3.0], [2.0, 0.0, 0.0]
    p = project_value(_sums(y1, y2), window=14, horizon=14)
    assert float(p.value) == pytest.approx(2.0)
    assert float(p.variance) == pytest.approx(np.var(np.add(y1, y2), ddof=1) / 3)


def test_too_few_customers_or_no_first_half_spend_is_nan():
    assert np.isnan(project_value(_sums([1.0], [1.0]), window=10, horizon=20).value)
    assert np.isnan(project_value(_sums([0.0, 0.0], [1.0, 2.0]), window=10, horizon=20).value)


def test_value_difference_adds_independent_variances():
    from scipy import stats

    rng = np.random.default_rng(3)
    c = project_value(
        _sums(rng.exponential(2, 300), rng.exponential(1.5, 300)), window=28, horizon=90
    )
    t = project_value(
        _sums(rng.exponential(2.5, 300), rng.exponential(2, 300)), window=28, horizon=90
    )
    diff = value_difference(c, t)
    se = np.sqrt(c.variance + t.variance)
    assert float(diff.ci_high - diff.effect) == pytest.approx(stats.norm.isf(0.025) * se, rel=1e-9)
    assert float(diff.p_value) == pytest.approx(
        2 * stats.norm.sf(abs((t.value - c.value) / se)), rel=1e-9
    )
