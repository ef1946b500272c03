"""Multiple-testing corrections: Holm (FWER) and Benjamini-Hochberg (FDR) p-values."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from experiment.stats._checks import check_choice
from experiment.stats._lift import FloatArray

__all__ = ["Correction", "adjust_pvalues"]

Correction = Literal["holm", "bh", "none"]
_CORRECTIONS: tuple[Correction, ...] = ("holm", "bh", "none")


def adjust_pvalues(
    p_values: ArrayLike,
    *,
    method: Correction = "holm",
    groups: ArrayLike | None = None,
) -> FloatArray:
    """Adjusted p-values, computed separately within each family, all families at once.

    With ``m`` p-values in a family sorted as ``p_(1) ≤ … ≤ p_(m)``:

    - ``"holm"`` (Holm-Bonferroni, controls the family-wise error rate):
      ``p̃_(i) = max_{j ≤ i} min(1, (m - j + 1) p_(j))``.
    - ``"bh"`` (Benjamini-Hochberg, controls the false discovery rate):
      ``p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)``.
    - ``"none"``: the p-values unchanged.

    ``nan`` p-values (degenerate cells) stay ``nan`` and do not count towards ``m``.
    Adjusted p-values are monotone in the raw ones within a family, at least the raw
    value, and at most 1.

    Args:
        p_values: Raw p-values, any shape; each in [0, 1] or ``nan``.
        method: The correction.
        groups: A family label per p-value (e.g. the metric name of each cell), same
            shape as ``p_values``. ``None`` puts every p-value in one family.

    Returns:
        Adjusted p-values, same shape as ``p_values``.

    Raises:
        ValueError: A p-value is outside [0, 1], ``groups`` has another shape, or
            ``method`` is unknown.

    References:
        Holm (1979): https://en.wikipedia.org/wiki/Holm%E2%80%93Bonferroni_method
        Benjamini & Hochberg (1995):
        https://en.wikipedia.org/wiki/False_discovery_rate#Benjamini%E2%80%93Hochberg_procedure
        Same definitions as statsmodels ``multipletests``:
        https://www.statsmodels.org/stable/generated/statsmodels.stats.multitest.multipletests.html

    Examples:
        >>> adjust_pvalues([0.01, 0.04, 0.03, np.nan], method="holm")
        array([0.03, 0.06, 0.06,  nan])
        >>> adjust_pvalues([0.01, 0.04, 0.03, 0.02], method="bh", groups=["a", "a", "b", "b"])
        array([0.02, 0.04, 0.03, 0.03])
    """
    method = check_choice(method, "method", _CORRECTIONS)
    p = np.asarray(p_values, dtype=np.float64)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must be >= 0 and <= 1 (or nan).")
    if groups is None:
        family = np.zeros(p.shape, dtype=np.int64)
    else:
        labels = np.asarray(groups)
        if labels.shape != p.shape:
            raise ValueError(
                "Both `p_values` and `groups` label the same tests, so they must have the "
                f"same shape; got {p.shape} and {labels.shape}."
            )
        family = np.unique(labels.ravel(), return_inverse=True)[1].reshape(p.shape)
    if method == "none":
        return p.copy()

    out = np.full(p.size, np.nan)
    keep = ~np.isnan(p.ravel())
    pk, fk = p.ravel()[keep], family.ravel()[keep]
    order = np.lexsort((pk, fk))  # by family, then by p-value
    ps, fs = pk[order], fk[order]
    size = np.bincount(fs)  # family sizes, nan excluded
    start = np.cumsum(size) - size
    rank = np.arange(ps.size) - start[fs] + 1.0  # 1-based rank within the family
    m = size[fs].astype(np.float64)

    if method == "holm":
        raw = np.minimum(1.0, (m - rank + 1.0) * ps)
        adjusted = _running(raw, fs, reverse=False)
    else:  # bh
        raw = np.minimum(1.0, m / rank * ps)
        adjusted = _running(raw, fs, reverse=True)
    sorted_back = np.empty_like(adjusted)
    sorted_back[order] = adjusted
    out[keep] = sorted_back
    return out.reshape(p.shape)


def _running(values: FloatArray, family: NDArray[np.int64], *, reverse: bool) -> FloatArray:
    """Running max (forward) or running min (backward) within families of sorted rows.

    Each value is replaced by its integer rank and shifted by ``family * len`` so that a
    single global accumulate never crosses a family boundary. Integers keep this
    exact; shifting the floats themselves would round tiny p-values to 0.
    """
    k = values.size
    sorter = np.argsort(values, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[sorter] = np.arange(k)
    key = rank + family * k
    acc = np.minimum.accumulate(key[::-1])[::-1] if reverse else np.maximum.accumulate(key)
    return values[sorter[acc - family * k]]
