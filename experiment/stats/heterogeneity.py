"""Heterogeneity of a lift across segments: Cochran's Q, its p-value and I²."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from experiment.stats._dist import chi2_sf
from experiment.stats._lift import FloatArray, StrArray
from experiment.stats.messages import OK, TOO_FEW_SEGMENTS

__all__ = ["HeterogeneityResult", "cochran_q"]


@dataclass(frozen=True, eq=False)
class HeterogeneityResult:
    """Between-segment heterogeneity of one metric's lift (one element per metric row).

    Attributes:
        q: Cochran's Q, the inverse-variance weighted sum of squared deviations of the
            segment estimates from their fixed-effect mean.
        p_value: ``P(χ²_df > Q)``, the test that every segment has the same lift.
        i2: ``I² = max(0, (Q - df) / Q)``: the share of the spread of the estimates
            that is real variation rather than sampling noise (0 where ``Q == 0``).
        df: Degrees of freedom, ``k - 1`` for ``k`` usable segments.
        k: Number of usable segments.
        reason: ``""``, or ``"too_few_segments"`` when ``k < 2`` (then ``nan``).
    """

    q: FloatArray
    p_value: FloatArray
    i2: FloatArray
    df: FloatArray
    k: FloatArray
    reason: StrArray


def cochran_q(estimates: ArrayLike, standard_errors: ArrayLike) -> HeterogeneityResult:
    """Cochran's Q test of equal lifts across segments, with Higgins' I².

    With weights ``w_i = 1 / se_i²`` and the fixed-effect mean ``μ̂ = Σ w_i y_i / Σ w_i``,
    ``Q = Σ w_i (y_i - μ̂)²`` is ``χ²`` with ``k - 1`` degrees of freedom when every
    segment has the same true lift and the estimates are independent and normal. A
    segment whose estimate or standard error is ``nan`` or whose standard error is not
    positive (a degenerate cell) is skipped; fewer than 2 usable segments give ``nan``
    with the reason ``"too_few_segments"``.

    The estimates must be **independent**: use it on mutually exclusive segments (a
    partition of the users, such as lifecycle stages or one dimension's values), never
    across overlapping micro-segments or together with the segment ``all``, whose
    shared users make Q too small and its p-value too large. Q has low power with few
    segments; read I² as the size of the heterogeneity, the p-value as its evidence.

    Args:
        estimates: The lift per segment (absolute or relative, consistently), last
            axis = segments; leading axes (e.g. metrics) are computed at once.
        standard_errors: Standard errors of ``estimates``, same shape.

    Returns:
        One result per leading index (0-d arrays for a 1-D input).

    Raises:
        ValueError: The two inputs differ in shape or are 0-d.

    References:
        Cochran (1954); Higgins & Thompson (2002), "Quantifying heterogeneity in a
        meta-analysis", https://doi.org/10.1002/sim.1186
        https://en.wikipedia.org/wiki/Cochran%27s_Q_test and
        https://en.wikipedia.org/wiki/Study_heterogeneity
        Same definitions as statsmodels ``combine_effects`` (which leaves I² negative):
        https://www.statsmodels.org/stable/generated/statsmodels.stats.meta_analysis.combine_effects.html

    Examples:
        >>> res = cochran_q([0.10, 0.30, 0.20, np.nan], [0.05, 0.05, 0.05, 0.05])
        >>> [round(float(v), 4) for v in (res.q, res.p_value, res.i2, res.df)]
        [8.0, 0.0183, 0.75, 2.0]
        >>> cochran_q([0.1, 0.2], [0.05, np.nan]).reason.tolist()
        'too_few_segments'
    """
    y = np.asarray(estimates, dtype=np.float64)
    se = np.asarray(standard_errors, dtype=np.float64)
    if y.shape != se.shape or y.ndim == 0:
        raise ValueError(
            "Both `estimates` and `standard_errors` hold one value per segment (last "
            f"axis), so they must have the same shape of at least 1 dimension; got "
            f"{y.shape} and {se.shape}."
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        usable = np.isfinite(y) & np.isfinite(se) & (se > 0)
        w = np.where(usable, 1.0 / np.where(usable, se, 1.0) ** 2, 0.0)
        yz = np.where(usable, y, 0.0)
        k = np.asarray(usable.sum(axis=-1), dtype=np.float64)
        mean = (w * yz).sum(axis=-1) / w.sum(axis=-1)
        q = (w * (yz - mean[..., None]) ** 2).sum(axis=-1)
        df = k - 1.0
        enough = k >= 2
        q = np.where(enough, q, np.nan)
        i2 = np.where(q > df, (q - df) / q, 0.0)
    return HeterogeneityResult(
        q=q,
        p_value=np.where(enough, chi2_sf(q, np.maximum(df, 1.0)), np.nan),
        i2=np.where(enough, i2, np.nan),
        df=np.where(enough, df, np.nan),
        k=k,
        reason=np.where(enough, OK, TOO_FEW_SEGMENTS),
    )
