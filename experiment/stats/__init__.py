"""The stats engine: pure functions from sufficient statistics to result arrays.

Every function works on all cells at once (one element per cell) and imports only
numpy, scipy and ``experiment.sums``. Degenerate cells give ``nan`` and a reason code
from ``experiment.stats.messages``; caller mistakes raise ``TypeError``/``ValueError``.
"""

from __future__ import annotations

from experiment.stats.adjusted import AdjustedInterval, adjusted_interval
from experiment.stats.balance import BalanceFlags, BalanceResult, balance_flags, balance_test
from experiment.stats.bayes import BayesResult, bayes_beta_binomial, bayes_normal
from experiment.stats.cuped import CupedResult, cuped_ttest
from experiment.stats.heterogeneity import HeterogeneityResult, cochran_q
from experiment.stats.interaction import (
    InteractionResult,
    Scale,
    complement,
    interaction_test,
    log_scale,
)
from experiment.stats.moments import arm_moments, cuped_reduction, per_user_moments
from experiment.stats.multiplicity import Correction, adjust_pvalues
from experiment.stats.power import (
    MdeResult,
    SampleSizeResult,
    cuped_variance_reduction,
    detectable_effect_size,
    mde_cell,
    mde_mean,
    power_normal,
    sample_size,
    sample_size_mean,
)
from experiment.stats.ratio import ratio_ttest
from experiment.stats.regression import (
    RegressionResult,
    ratio_linearised,
    ratio_regression_ttest,
    regression_r2,
    regression_ttest,
)
from experiment.stats.sequential import SequentialResult, sequential_interval, sequential_rho
from experiment.stats.shrinkage import ShrinkageResult, paule_mandel, shrink_lifts
from experiment.stats.srm import SrmManyResult, SrmResult, srm_test, srm_test_many
from experiment.stats.ttest import (
    Alternative,
    LiftResult,
    RelativeInterval,
    welch_ttest,
)

__all__ = [
    "AdjustedInterval",
    "Alternative",
    "BalanceFlags",
    "BalanceResult",
    "BayesResult",
    "Correction",
    "CupedResult",
    "HeterogeneityResult",
    "InteractionResult",
    "LiftResult",
    "MdeResult",
    "RegressionResult",
    "RelativeInterval",
    "SampleSizeResult",
    "Scale",
    "SequentialResult",
    "ShrinkageResult",
    "SrmManyResult",
    "SrmResult",
    "adjust_pvalues",
    "adjusted_interval",
    "arm_moments",
    "balance_flags",
    "balance_test",
    "bayes_beta_binomial",
    "bayes_normal",
    "cochran_q",
    "complement",
    "cuped_reduction",
    "cuped_ttest",
    "cuped_variance_reduction",
    "detectable_effect_size",
    "interaction_test",
    "log_scale",
    "mde_cell",
    "mde_mean",
    "paule_mandel",
    "per_user_moments",
    "power_normal",
    "ratio_linearised",
    "ratio_regression_ttest",
    "ratio_ttest",
    "regression_r2",
    "regression_ttest",
    "sample_size",
    "sample_size_mean",
    "sequential_interval",
    "sequential_rho",
    "shrink_lifts",
    "srm_test",
    "srm_test_many",
    "welch_ttest",
]
