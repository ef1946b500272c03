"""Predictive segments: a logistic propensity model and segments by score band.

The model is a statsmodels logistic regression (small ridge penalty) on
standardised features, fitted on a random part of a sample pulled from the engine
and scored on the held-out rest (AUC). Bands are quantiles of the linear score on
the whole sample, saved as thresholds, so membership compiles to a linear Ibis
expression and reproduces exactly at rollout.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.errors import DataError

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["PredictModel", "auc", "describe_band", "fit_propensity", "predict_exprs"]


@dataclass(frozen=True)
class PredictModel:
    """A fitted propensity model: scaling, coefficients, band thresholds, held-out AUC."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    sd: tuple[float, ...]
    coef: tuple[float, ...]  # intercept first, then one per standardised feature
    bands: dict[str, tuple[float | None, float | None]]
    auc: float
    n_train: int
    n_test: int
    base_rate: float


def auc(score: NDArray[np.float64], y: NDArray[np.bool_]) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count half).

    References:
        Hanley & McNeil (1982): https://doi.org/10.1148/radiology.143.1.7063747
    """
    from scipy.stats import rankdata

    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def linear_score(model: PredictModel, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The model's linear predictor (log-odds) for raw feature rows."""
    z = (x - np.array(model.mean)) / np.array(model.sd)
    return np.asarray(model.coef[0] + z @ np.array(model.coef[1:]))


def fit_propensity(
    x: NDArray[np.float64],
    y: NDArray[np.bool_],
    features: tuple[str, ...],
    *,
    bands: dict[str, tuple[float, float]],
    holdout: float,
    seed: int,
    l2: float = 1e-3,
) -> PredictModel:
    """Fit a logistic regression of ``y`` on standardised ``x``; AUC on a held-out part.

    The fit is statsmodels' GLM (binomial, logit link) with a small ridge penalty
    ``l2`` (per observation), so a feature that almost separates the classes gives
    a finite coefficient instead of a failed fit.

    References:
        statsmodels ``GLM.fit_regularized``:
        https://www.statsmodels.org/stable/generated/statsmodels.genmod.generalized_linear_model.GLM.fit_regularized.html

    Raises:
        DataError: the target has one class only, or the fit fails (e.g. separation).
    """
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM

    if y.all() or not y.any():
        raise DataError("the target is the same for every customer; nothing to predict")
    rng = np.random.default_rng(seed)
    test = rng.random(len(y)) < holdout
    mean = x.mean(axis=0)
    sd = x.std(axis=0, ddof=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mean) / sd
    design = np.column_stack([np.ones(len(z)), z])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")  # statsmodels warns on near-separation; ridge copes
        try:
            fit = GLM(y[~test].astype(float), design[~test], family=Binomial()).fit_regularized(
                alpha=l2, L1_wt=0.0
            )
        except Exception as exc:  # statsmodels raises several types (singular, domain)
            raise DataError(f"the propensity model cannot be fitted ({exc})") from None
    coef = np.asarray(fit.params, dtype=float)
    if not np.all(np.isfinite(coef)):
        raise DataError("the propensity model did not converge to finite coefficients")
    score = design @ coef
    thresholds: dict[str, tuple[float | None, float | None]] = {}
    for name, (low, high) in bands.items():
        thresholds[name] = (
            float(np.quantile(score, low)) if low > 0 else None,
            float(np.quantile(score, high)) if high < 1 else None,
        )
    return PredictModel(
        features=features,
        mean=tuple(float(v) for v in mean),
        sd=tuple(float(v) for v in sd),
        coef=tuple(float(v) for v in coef),
        bands=thresholds,
        auc=auc(score[test], y[test]),
        n_train=int((~test).sum()),
        n_test=int(test.sum()),
        base_rate=float(y.mean()),
    )


def predict_exprs(model: PredictModel, columns: list[Any]) -> list[ir.BooleanValue]:
    """One membership expression per band; ``columns`` are the feature columns."""
    import ibis

    score: Any = ibis.literal(model.coef[0])
    for col, m, s, b in zip(columns, model.mean, model.sd, model.coef[1:], strict=True):
        score = score + b * ((col.cast("float64") - m) / s)
    out = []
    for low, high in model.bands.values():
        cond: Any = score.notnull()
        if low is not None:
            cond = cond & (score >= low)
        if high is not None:
            cond = cond & (score < high)
        out.append(cond)
    return out


def describe_band(model: PredictModel, quantiles: tuple[float, float], *, target: str) -> str:
    """A score band in words: the target, the band's quantiles of the score, the model's AUC."""
    low, high = quantiles
    auc_text = f"{model.auc:.2f}" if np.isfinite(model.auc) else "not measured"
    return (
        f"propensity score for {target} between its {low:.0%} and {high:.0%} quantiles "
        f"(logistic model on {', '.join(model.features)}; held-out AUC {auc_text})"
    )
