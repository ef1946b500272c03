"""Beta quantiles at normal scores, by Halley and Newton steps on ``betainc``.

``scipy.special.betaincinv`` costs 10-30 ``betainc`` calls per quantile, and most of
the Bayesian read-out's time went to it; :func:`logit_quantile` needs two at the
counts of an experiment's segments, and is more accurate than it at large counts.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from experiment.stats._lift import FloatArray

_MAX_STEPS = 6  # betainc evaluations per quantile before falling back to betaincinv
# Largest accepted last Newton step in the logit: d log x / dy = 1 - x and
# d log(1 - x) / dy = -x, so it bounds the relative error of both x and 1 - x.
_TOLERANCE = 1e-12
# Past logit(1 - 1e-3), I(a, b; x) is taken as 1 - I(b, a; 1 - x) with the exact 1 - x,
# so that rounding x costs at most 2^-53 / 1e-3 ≈ 1e-13 relative in 1 - x.
_COMPLEMENT_FROM = float(special.logit(1.0 - 1e-3))


def incbeta(a: FloatArray, b: FloatArray, y: FloatArray) -> FloatArray:
    """``I(a, b; x)`` at ``x = expit(y)``, from whichever of ``x``, ``1 - x`` is exact.

    scipy's ``betaincc`` is much slower than ``betainc``, so it is used only where
    ``x`` is so close to 1 that rounding it would lose the precision of ``1 - x``. The
    upper function is ``Ī(a, b; x) = incbeta(b, a, -y)``.

    References:
        DLMF 8.17.4, ``I(a, b; x) = 1 - I(b, a; 1 - x)``: https://dlmf.nist.gov/8.17.E4
    """
    a, b, y = np.broadcast_arrays(a, b, y)
    near_one = y > _COMPLEMENT_FROM
    out = np.empty(y.shape)
    special.betainc(a, b, special.expit(y), out=out, where=~near_one)
    if near_one.any():
        special.betaincc(b, a, special.expit(-y), out=out, where=near_one)
    return out


def logit_quantile(a: FloatArray, b: FloatArray, scores: FloatArray) -> FloatArray:
    """Logits of the ``Beta(a, b)`` quantiles at the probabilities ``Φ(z)`` of ``scores``.

    ``a`` and ``b`` are columns, one row per cell; ``scores`` is one row, the ``z`` of
    every cell. Each tail is solved from its own side so that no probability is
    rounded near 1: ``z <= 0`` solves ``I(a, b; x) = Φ(z)``, ``z > 0`` solves
    ``I(b, a; 1 - x) = Φ(-z)`` (the upper tail as the lower tail of ``Beta(b, a)``,
    whose logit is ``-y``).

    The unknown is the logit ``y`` of ``x`` and the equation is solved in logs,
    ``g(y) = log I(A, B; expit(y)) = log Φ(-|z|)``, with ``I`` from :func:`incbeta`.
    The logit of a Beta variable has the log-concave density
    ``e^{A y} (1 + e^y)^{-A-B} / B(A, B)``, so its CDF is log-concave: ``g`` is concave
    and increasing, and Newton's method on it converges from any start (after at most
    one step past the root, monotonically). The start is the Cornish-Fisher expansion
    from the logit's first four cumulants (digamma and polygamma functions); Halley
    steps follow (``g''`` is in closed form) until the Newton step
    ``Δy = (g(y) - log Φ(-|z|)) / g'(y)`` is at most ``_TOLERANCE``; that step is then
    taken. It leaves an error below ``|Δy|``: by concavity when it goes down, and of
    order ``Δy²`` when it goes up. So ``x`` and ``1 - x`` are accurate to 1e-12
    relative, to the accuracy of ``betainc`` (the tests find 1e-13). At counts in the
    tens or more, two steps suffice. Quantiles not accepted after ``_MAX_STEPS`` (the
    far tails when ``a`` or ``b`` is below ~5) are computed by ``betaincinv``, or by
    ``betainccinv`` for ``1 - x`` where ``x > 1/2``, with scipy's accuracy, ~1e-15 at
    such counts. (scipy's drifts at large counts, to ~1e-10 relative at ``a`` or
    ``b = 1e5`` and ~1e-5 at ``1e7``; Newton's steps do not.)

    Args:
        a: First Beta parameters, shape ``(cells, 1)``, > 0.
        b: Second Beta parameters, same shape, > 0.
        scores: Normal scores ``z``, shape ``(k,)``.

    Returns:
        The logits ``log(x / (1 - x))``, shape ``(cells, k)``; ``expit`` of them and of
        their negatives give ``x`` and ``1 - x``, both to full relative precision.

    References:
        Cumulants of the logit of a Beta variable:
        https://en.wikipedia.org/wiki/Beta_distribution#Moments_of_logarithmically_transformed_random_variables
        Cornish-Fisher expansion: https://en.wikipedia.org/wiki/Cornish%E2%80%93Fisher_expansion
        Log-concave densities have log-concave CDFs (Bagnoli and Bergstrom, 2005):
        https://doi.org/10.1007/s00199-004-0514-4
        Halley's method: https://en.wikipedia.org/wiki/Halley%27s_method
        Newton's method on convex/concave functions:
        https://en.wikipedia.org/wiki/Newton%27s_method#Analysis
        The same inversion by Halley's method, in ``x`` rather than its logit: Numerical
        Recipes, 3rd ed., chapter 6, ``invbetai``, https://numerical.recipes/book.html
    """
    z = np.asarray(scores, dtype=np.float64)
    var = special.polygamma(1, a) + special.polygamma(1, b)
    skew = (special.polygamma(2, a) - special.polygamma(2, b)) / var**1.5
    kurt = (special.polygamma(3, a) + special.polygamma(3, b)) / var**2
    score = (
        z
        + skew * (z**2 - 1.0) / 6.0
        + kurt * (z**3 - 3.0 * z) / 24.0
        - skew**2 * (2.0 * z**3 - 5.0 * z) / 36.0
    )
    shape = score.shape
    upper = z > 0
    sign = np.broadcast_to(np.where(upper, -1.0, 1.0), shape).ravel()
    mean = special.digamma(a) - special.digamma(b)
    y = sign * (mean + np.sqrt(var) * score).ravel()
    big_a, big_b = np.where(upper, b, a).ravel(), np.where(upper, a, b).ravel()
    log_beta = np.broadcast_to(special.betaln(a, b), shape).ravel()
    log_tail = np.broadcast_to(special.log_ndtr(-np.abs(z)), shape).ravel()
    todo = np.arange(y.size)
    with np.errstate(all="ignore"):  # a poor start may give inf or nan: never accepted
        for _ in range(_MAX_STEPS):
            yk, ak, bk = y[todo], big_a[todo], big_b[todo]
            log_x, log_1mx = -np.logaddexp(0.0, -yk), -np.logaddexp(0.0, yk)
            log_cdf = np.log(incbeta(ak, bk, yk))
            residual = log_cdf - log_tail[todo]
            slope = np.exp(ak * log_x + bk * log_1mx - log_beta[todo] - log_cdf)  # g'
            newton = residual / slope
            done = np.abs(newton) <= _TOLERANCE
            curve = (ak * np.exp(log_1mx) - bk * np.exp(log_x) - slope) * slope  # g''
            halley = 2.0 * residual * slope / (2.0 * slope**2 - residual * curve)
            y[todo] = yk - np.where(done, newton, halley)
            todo = todo[~done]
            if not todo.size:
                break
    if todo.size:
        tail = np.broadcast_to(special.ndtr(-np.abs(z)), shape).ravel()
        x = special.betaincinv(big_a[todo], big_b[todo], tail[todo])
        y[todo] = special.logit(x)
        high = todo[x > 0.5]  # invert for 1 - x instead, which x would round
        y[high] = -special.logit(special.betainccinv(big_b[high], big_a[high], tail[high]))
    return (sign * y).reshape(shape)
