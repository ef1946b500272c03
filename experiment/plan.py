"""The metric-kind table: what each kind of metric is per user, and how it is tested.

This module is the only place where a metric kind is named. Every other module
asks the table (:func:`kind_plan`) a question (is the per-user value 0/1? does
it have a denominator? which test, which power formula, which Bayesian model?),
so adding a kind means adding one row here.

Examples:
    >>> kind_plan("retention").binary
    True
    >>> kind_plan("ratio").method
    'delta-method welch-t'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "KINDS",
    "BayesModel",
    "KindPlan",
    "MetricKind",
    "kind_plan",
]

MetricKind = Literal["proportion", "mean", "ratio", "retention"]
BayesModel = Literal["beta-binomial", "normal"]


@dataclass(frozen=True, kw_only=True)
class KindPlan:
    """How one metric kind is measured, tested and planned.

    Attributes:
        kind: The kind's name, as written in the experiment file.
        binary: The per-user value is ``1[measure > 0]`` (converted or retained); its
            power formula is a proportion's, variance ``p(1-p)`` from the mean.
        ratio: Two per-user measures, numerator and denominator (delta method).
        method: The test's label, the start of results.json's ``method``: ``welch-t``
            (``welch_ttest``: Welch's t on Welch-Satterthwaite degrees of freedom) or
            ``delta-method welch-t`` (``ratio_ttest``: the same test on the ratios'
            delta-method variances). A CUPED metric runs ``cuped_ttest`` instead and
            its label says so (:func:`experiment.analysis.rows.method_label`).
        bayes: The posterior model of the chance to win (without CUPED).
        takes_cap: The per-user value may be winsorised (``cap``).
        takes_cuped: Pre-period covariates may adjust it (``cuped``; a ratio's as a list).
        needs_day: The metric reads one day after assignment (``day``).
        rate_scale: Means are rates or shares (shown with more digits).
        event_floor: ``exp refine`` asks each side for a minimum of events per arm.
    """

    kind: MetricKind
    binary: bool
    ratio: bool
    method: str
    bayes: BayesModel
    takes_cap: bool
    takes_cuped: bool
    needs_day: bool
    rate_scale: bool
    event_floor: bool


KINDS: dict[str, KindPlan] = {
    "proportion": KindPlan(
        kind="proportion",
        binary=True,
        ratio=False,
        method="welch-t",
        bayes="beta-binomial",
        takes_cap=False,
        takes_cuped=True,
        needs_day=False,
        rate_scale=True,
        event_floor=True,
    ),
    "mean": KindPlan(
        kind="mean",
        binary=False,
        ratio=False,
        method="welch-t",
        bayes="normal",
        takes_cap=True,
        takes_cuped=True,
        needs_day=False,
        rate_scale=False,
        event_floor=False,
    ),
    "ratio": KindPlan(
        kind="ratio",
        binary=False,
        ratio=True,
        method="delta-method welch-t",
        bayes="normal",
        takes_cap=False,
        takes_cuped=True,
        needs_day=False,
        rate_scale=True,
        event_floor=True,
    ),
    "retention": KindPlan(
        kind="retention",
        binary=True,
        ratio=False,
        method="welch-t",
        bayes="beta-binomial",
        takes_cap=False,
        takes_cuped=True,
        needs_day=True,
        rate_scale=True,
        event_floor=True,
    ),
}


def kind_plan(kind: str) -> KindPlan:
    """The row of the table for ``kind``.

    Raises:
        ValueError: ``kind`` is not a metric kind.
    """
    try:
        return KINDS[kind]
    except KeyError:
        valid = ", ".join(KINDS)
        raise ValueError(f"metric kind {kind!r} is not one of: {valid}.") from None
