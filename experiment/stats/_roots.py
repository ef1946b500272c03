"""Brent's root finder for one scalar equation, in plain Python (no ``scipy.optimize``).

``scipy.optimize`` costs about 0.2 s to import, more than the whole statistics step
of a typical run, and the only root the analysis needs is the MDE's shift
(:mod:`experiment.stats.power`). This is a line-by-line transcription of SciPy's
``brentq`` (``scipy/optimize/Zeros/brentq.c``, by Charles Harris): the same
operations on the same doubles, so it returns bit for bit what
``scipy.optimize.brentq`` returns (``tests/experiment/stats/test_roots.py``).

References:
    Brent, "Algorithms for Minimization Without Derivatives" (1973), ch. 4.
    SciPy, ``scipy/optimize/Zeros/brentq.c``,
    https://github.com/scipy/scipy/blob/main/scipy/optimize/Zeros/brentq.c
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["brentq"]


class _Function(Protocol):
    """A real function of one real variable (the stats core imports nothing else)."""

    def __call__(self, x: float, /) -> float: ...


_RTOL = 4 * 2.220446049250313e-16  # scipy.optimize.brentq's default: 4 machine epsilons


def brentq(  # noqa: PLR0912 (one transcribed loop)
    f: _Function,
    a: float,
    b: float,
    *,
    xtol: float = 2e-12,
    rtol: float = _RTOL,
    maxiter: int = 100,
) -> float:
    """A root of ``f`` in ``[a, b]``, where ``f(a)`` and ``f(b)`` differ in sign.

    Raises:
        ValueError: ``f(a)`` and ``f(b)`` have the same sign, or no convergence.
    """
    xpre, xcur = a, b
    xblk = fblk = spre = scur = 0.0
    fpre, fcur = f(xpre), f(xcur)
    if fpre * fcur > 0:
        raise ValueError("f(a) and f(b) must have different signs.")
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and (fpre < 0) != (fcur < 0):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # interpolate
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):  # good short step
                spre, scur = scur, stry
            else:  # bisect
                spre = scur = sbis
        else:  # bisect
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = f(xcur)
    raise ValueError(f"No convergence in {maxiter} iterations.")
