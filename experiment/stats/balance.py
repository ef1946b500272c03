"""Pre-exposure balance: do the arms differ on covariates measured before assignment?

Randomisation makes every pre-period covariate (a CUPED column, a behavioural
attribute) equal in distribution across arms, so a difference larger than chance
allows means the randomisation or the assignment join is broken, as a sample
ratio mismatch does. Each (segment, covariate, treatment arm) is tested with
Welch's t on the arm means; the whole family is corrected with Holm at the SRM
threshold, which bounds the chance of any false flag by that threshold whatever
the dependence between the tests (overlapping segments, correlated covariates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from experiment.stats._checks import check_arms, check_scalar
from experiment.stats._dist import t_sf
from experiment.stats._lift import BoolArray, FloatArray, welch_dof
from experiment.stats.multiplicity import adjust_pvalues
from experiment.sums import MeanSums

__all__ = ["BalanceFlags", "BalanceResult", "balance_flags", "balance_test"]


@dataclass(frozen=True)
class BalanceResult:
    """Per-cell comparison of one arm's covariate with control's.

    Attributes:
        smd: Standardised mean difference ``(x̄_t − x̄_c) / sqrt((s_c² + s_t²) / 2)``.
        statistic: Welch's ``t``.
        dof: Welch-Satterthwaite degrees of freedom.
        p_value: Two-sided p-value; ``nan`` when an arm has fewer than 2 units or
            both arms are constant (nothing to compare).
    """

    smd: FloatArray
    statistic: FloatArray
    dof: FloatArray
    p_value: FloatArray


def balance_test(control: MeanSums, treatment: MeanSums) -> BalanceResult:
    """Welch's t-test and standardised mean difference of a covariate, every cell at once.

    Args:
        control: The covariate's sums in the control arm, one element per cell.
        treatment: The same in the treatment arm, same shape.

    Returns:
        SMD, ``t``, degrees of freedom and two-sided p-value per cell. A cell with
        fewer than 2 units in an arm, or zero variance in both arms, gets ``nan``.

    Raises:
        TypeError: An arm is not ``MeanSums``.
        ValueError: The arms differ in shape.

    References:
        Welch's t-test: https://en.wikipedia.org/wiki/Welch%27s_t-test
        Austin (2009), "Balance diagnostics for comparing the distribution of baseline
        covariates between treatment groups", Stat. Med. 28(25) (the SMD):
        https://doi.org/10.1002/sim.3697

    Examples:
        >>> c = MeanSums(n=[1000, 1], mean=[10.0, 1.0], m2=[9990.0, 0.0])
        >>> t = MeanSums(n=[1000, 9], mean=[11.0, 1.0], m2=[9990.0, 8.0])
        >>> res = balance_test(c, t)
        >>> res.smd.round(3).tolist(), float(res.p_value[0]) < 1e-6, bool(np.isnan(res.p_value[1]))
        ([0.316, nan], True, True)
    """
    control, treatment = check_arms(control, treatment, MeanSums)
    var_c, var_t = control.var, treatment.var
    with np.errstate(divide="ignore", invalid="ignore"):
        v_c, v_t = var_c / control.n, var_t / treatment.n
        se = np.sqrt(v_c + v_t)
        diff = treatment.mean - control.mean
        smd = np.where(var_c + var_t > 0, diff / np.sqrt((var_c + var_t) / 2), 0.0)
        defined = (control.n >= 2) & (treatment.n >= 2) & (se > 0)
        statistic = np.where(defined, diff / np.where(defined, se, 1.0), np.nan)
        dof = np.where(defined, welch_dof(v_c, v_t, control.n, treatment.n), np.nan)
    p_value = np.asarray(2.0 * t_sf(np.abs(statistic), dof), dtype=np.float64)
    smd = np.where((control.n >= 2) & (treatment.n >= 2), smd, np.nan)
    return BalanceResult(smd=smd, statistic=statistic, dof=dof, p_value=p_value)


@dataclass(frozen=True)
class BalanceFlags:
    """Holm-adjusted p-values of a family of balance tests and which are flagged."""

    p_adjusted: FloatArray
    flag: BoolArray


def balance_flags(p_values: ArrayLike, *, threshold: float = 0.001) -> BalanceFlags:
    """Holm-adjust a family of balance p-values; flag those below ``threshold``.

    Holm controls the family-wise error rate under any dependence, so on data
    whose randomisation is sound the chance that *any* test is flagged is at most
    ``threshold`` (the SRM threshold, 0.001 by default). Whether anything is
    flagged is the same decision as Bonferroni's (the smallest p against
    ``threshold / m``); Holm also flags the next tests once the first is.

    Args:
        p_values: Raw p-values of every test, any shape; ``nan`` ones do not count.
        threshold: The family-wise level.

    Returns:
        Adjusted p-values and flags, same shape as ``p_values``.

    References:
        Holm (1979): https://en.wikipedia.org/wiki/Holm%E2%80%93Bonferroni_method

    Examples:
        >>> res = balance_flags([1e-5, 0.5, np.nan, 0.01], threshold=0.001)
        >>> res.p_adjusted.round(6).tolist()[:2], res.flag.tolist()
        ([3e-05, 0.5], [True, False, False, False])
    """
    threshold = check_scalar(threshold, "threshold", gt=0, lt=1)
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = adjust_pvalues(p, method="holm") if p.size else p.copy()
    return BalanceFlags(p_adjusted=adjusted, flag=np.asarray(adjusted < threshold))
