"""logit_quantile: Beta quantiles against bisection, scipy and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy import special

from experiment.stats._beta import incbeta, logit_quantile

NODES = hermegauss(32)[0]  # the scores bayes_beta_binomial uses

GRID = np.array([0.5, 1, 2, 3, 5, 10, 30, 100, 1e3, 1e4, 1e5, 1e6, 1e7])


def _grid():
    a, b = np.meshgrid(GRID, GRID)
    return a.reshape(-1, 1), b.reshape(-1, 1)


def _lower_cdf(a, b, y):
    """I(a, b; expit(y)), from the side of expit(y) or 1 - expit(y) that is exact."""
    out, neg = np.empty(y.shape), y < 0
    out[neg] = special.betainc(a[neg], b[neg], special.expit(y[neg]))
    out[~neg] = special.betaincc(b[~neg], a[~neg], special.expit(-y[~neg]))
    return out


def _bisected_logits(a, b):
    """Logits of the quantiles at Φ(z) by bisection, to 1600 / 2^70 ≈ 1.4e-18."""
    shape = np.broadcast_shapes(a.shape, NODES.shape)
    upper = np.broadcast_to(NODES > 0, shape)
    tail = np.broadcast_to(special.ndtr(-np.abs(NODES)), shape)
    # Below the median solve I(a, b; x) = Φ(z); above, Ī(a, b; x) = I(b, a; 1 - x) = Φ(-z).
    a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    big_a, big_b, sign = np.where(upper, b, a), np.where(upper, a, b), np.where(upper, -1, 1)
    lo, hi = np.full(shape, -800.0), np.full(shape, 800.0)
    for _ in range(70):
        mid = 0.5 * (lo + hi)
        above = _lower_cdf(big_a, big_b, mid) > tail
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return sign * 0.5 * (lo + hi)


def test_logit_quantile_matches_bisection_on_grid():
    a, b = _grid()
    y, expected = logit_quantile(a, b, NODES), _bisected_logits(a, b)
    # Relative errors of x and of 1 - x, down to 1e-54 (a = 0.5 at z = -10).
    assert special.expit(y) == pytest.approx(special.expit(expected), rel=1e-12, abs=0)
    assert special.expit(-y) == pytest.approx(special.expit(-expected), rel=1e-12, abs=0)


def test_logit_quantile_matches_scipy_where_scipy_is_accurate():
    a, b = _grid()
    y = logit_quantile(a, b, NODES)
    low = NODES <= 0
    expected = np.empty(y.shape)
    expected[:, low] = special.betaincinv(a, b, special.ndtr(NODES[low]))
    expected[:, ~low] = special.betainccinv(a, b, special.ndtr(-NODES[~low]))
    small = (np.maximum(a, b) <= 1e3).ravel()
    assert special.expit(y[small]) == pytest.approx(expected[small], rel=1e-13, abs=0)
    # Beyond, betaincinv drifts (to ~1e-5 at a = 1e3, b = 1e7); the bisection test covers it.
    assert special.expit(y) == pytest.approx(expected, rel=1e-4, abs=0)


def test_logit_quantile_solves_the_common_case_without_betaincinv(monkeypatch):
    def fail(*args):
        raise AssertionError("fell back to betaincinv")

    monkeypatch.setattr(special, "betaincinv", fail)
    monkeypatch.setattr(special, "betainccinv", fail)
    rng = np.random.default_rng(5)
    n = rng.uniform(2_000, 5_000_000, 50)
    successes = np.round(n * rng.uniform(0.001, 0.5, 50))
    a, b = (1 + successes)[:, None], (1 + n - successes)[:, None]
    y = logit_quantile(a, b, NODES)
    assert special.expit(y) == pytest.approx(special.expit(_bisected_logits(a, b)), rel=1e-12)


def test_logit_quantile_small_counts_are_exact(monkeypatch):
    fallbacks = []
    betaincinv = special.betaincinv

    def spy(a, b, p):
        fallbacks.append(np.size(p))
        return betaincinv(a, b, p)

    monkeypatch.setattr(special, "betaincinv", spy)
    a, b = np.array([[1.0], [1.0], [2.0], [0.5]]), np.array([[1.0], [1e7], [3.0], [0.5]])
    y = logit_quantile(a, b, NODES)
    assert fallbacks  # Beta(1, 1e7)'s far tails need betaincinv; the others Newton's steps
    low = NODES <= 0
    u = special.ndtr(NODES)
    # Closed forms: Beta(1, 1) is uniform; Beta(1, b) has x = 1 - (1 - u)^(1/b).
    assert special.expit(y[0]) == pytest.approx(u, rel=1e-13)
    upper_1mx = special.ndtr(-NODES) ** (1 / 1e7)
    assert special.expit(-y[1, ~low]) == pytest.approx(upper_1mx[~low], rel=1e-13)
    assert special.expit(y[1, low]) == pytest.approx(-np.expm1(np.log1p(-u[low]) / 1e7), rel=1e-12)
    expected = _bisected_logits(a[2:], b[2:])
    assert special.expit(y[2:]) == pytest.approx(special.expit(expected), rel=1e-12)
    assert special.expit(-y[2:]) == pytest.approx(special.expit(-expected), rel=1e-12)


def test_incbeta_keeps_precision_on_both_sides():
    y = np.linspace(-40.0, 40.0, 161)
    # Closed forms: I(a, 1; x) = x^a and I(1, b; x) = 1 - (1 - x)^b, in logs of expit.
    for a in (3.5, 1e8):  # at a = 1e8, x^a near x = 1 hangs on the precision of 1 - x
        assert incbeta(np.full_like(y, a), np.ones_like(y), y) == pytest.approx(
            np.exp(a * special.log_expit(y)), rel=1e-13
        )
    b = 2.5
    expected = -np.expm1(b * special.log_expit(-y))
    assert incbeta(np.ones_like(y), np.full_like(y, b), y) == pytest.approx(expected, rel=1e-13)
    # The upper function Ī(1, b; x) = (1 - x)^b as incbeta(b, 1, -y), down to 1e-43.
    upper = incbeta(np.full_like(y, b), np.ones_like(y), -y)
    assert upper == pytest.approx(np.exp(b * special.log_expit(-y)), rel=1e-13)
