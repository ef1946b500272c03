import math

import pytest
from scipy.optimize import brentq as scipy_brentq
from scipy.special import ndtr, ndtri

from experiment.stats._roots import brentq


def _gap(alpha, power):
    crit = -ndtri(alpha / 2)
    return lambda s: float(ndtr(s - crit) + ndtr(-crit - s) - power)


CASES = [
    (lambda x: x**3 - 2 * x - 5, 2.0, 3.0),
    (math.cos, 0.0, 3.0),
    (lambda x: math.exp(x) - 10, -5.0, 5.0),
    (lambda x: x - 0.3, 0.0, 1.0),  # linear: interpolation only
    (lambda x: math.atan(x - 1e-3), -100.0, 1.0),  # flat far from the root: bisection
    *[(_gap(a, p), 0.0, 20.0) for a in (0.001, 0.05, 0.2) for p in (0.5, 0.8, 0.95)],
]


@pytest.mark.parametrize(("f", "a", "b"), CASES)
@pytest.mark.parametrize("xtol", [2e-12, 1e-14])
def test_brentq_equals_scipy_bit_for_bit(f, a, b, xtol):
    assert brentq(f, a, b, xtol=xtol) == scipy_brentq(f, a, b, xtol=xtol)


def test_brentq_endpoint_roots_and_sign_error():
    assert brentq(lambda x: x, 0.0, 1.0) == 0.0
    assert brentq(lambda x: x - 1, 0.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="different signs"):
        brentq(lambda x: x * x + 1, -1.0, 1.0)


def test_brentq_gives_up_after_maxiter():
    with pytest.raises(ValueError, match="No convergence"):
        brentq(math.cos, 0.0, 3.0, maxiter=1)
