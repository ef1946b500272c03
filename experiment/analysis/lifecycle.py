"""Lifecycle counts -> results: migration tests, survival curves and projected value by arm.

Wires :mod:`experiment.stats` to the engine's counts
(:class:`experiment.engine.lifecycle.LifecycleCounts`):

* **migration**: each destination share of a starting stage is a proportion, so
  the treatment effect is Welch's t on the 0/1 values from ``n, Σy, Σy²``
  (:func:`experiment.stats.ttest.welch_ttest`); corrected per (day, starting
  stage) over destinations × treatment arms (family ``migration:DAY:STAGE``);
* **segment migration**: the same for each ``migration_segments`` rule segment,
  states member / not member (family ``segment_migration:SEGMENT:DAY:STATE``);
* **survival**: Kaplan–Meier per (curve, segment, arm), the difference at each of
  ``retention_days`` tested with Greenwood's variance where each arm expects at
  least 5 events and non-events by then (else no p-value); corrected per (curve,
  segment) over days × treatment arms (family ``survival:CURVE:SEGMENT``);
* **value**: :func:`experiment.stats.ltv.project_value` per (segment, arm) and
  horizon, the effect's interval by the delta method (uncorrected: a projection,
  not a decision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.results.lifecycle import (
    MEMBERSHIP,
    Lifecycle,
    MigrationRow,
    MigrationSegmentRow,
    SegmentMigrationRow,
    SurvivalCurveRow,
    SurvivalRow,
    ValueRow,
)
from experiment.stats.ltv import project_value, value_difference
from experiment.stats.multiplicity import adjust_pvalues
from experiment.stats.survival import (
    MIN_EXPECTED,
    expected_events,
    kaplan_meier,
    pointwise_interval,
    survival_difference,
)
from experiment.stats.ttest import welch_ttest
from experiment.sums import MeanSums
from segments.lifecycle import STAGES

if TYPE_CHECKING:
    from experiment.config import Correction
    from experiment.engine.lifecycle import LifecycleCounts
    from experiment.stats.survival import SurvivalCurve

__all__ = ["VALUE_MODEL", "analyze_lifecycle"]

VALUE_MODEL = (
    "projection, not a measurement: value(H) = m1 + m2 + a·g^(h/2)·(1 - g^(H-W))/(1 - g), "
    "where m1, m2 are the mean spend per customer in the window's two halves (h = W/2 days "
    "each, customers followed all W days), a = m2/h the second half's daily spend and "
    "g = min(1, (m2/m1)^(1/h)) the daily decay between the halves (lapsing customers), "
    "assumed to go on unchanged and never to turn into growth; intervals: delta method on "
    "(m1, m2), so they carry the spend level and the decay, not the model's own error"
)


def _proportion(n: NDArray[np.float64], k: NDArray[np.float64]) -> MeanSums:
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, k / n, np.nan)
    return MeanSums(n=n, mean=mean, m2=np.where(n > 0, k * (1 - np.nan_to_num(mean)), 0.0))


def _transitions(
    m: NDArray[np.float64],
    days: tuple[int, ...],
    arms: tuple[str, ...],
    c: int,
    *,
    states: tuple[str, ...],
    family: str,
    alpha: float,
    correction: Correction,
) -> list[dict[str, Any]]:
    """Welch's t on every destination share of every starting state, per day and arm.

    ``m`` is ``(day, arm, start, destination)`` users; ``family`` names the
    correction family, with ``{day}`` and ``{start}`` filled in.
    """
    keys: list[tuple[int, int, int, int]] = []  # (day index, arm, start, destination)
    for i in range(len(days)):
        for a in (a for a in range(len(arms)) if a != c):
            for s in range(len(states)):
                if m[i, c, s].sum() == 0 and m[i, a, s].sum() == 0:
                    continue
                keys += [(i, a, s, e) for e in range(len(states)) if m[i, c, s, e] + m[i, a, s, e]]
    if not keys:
        return []
    i, a, s, e = np.asarray(keys, dtype=np.intp).T
    n_c, n_t = m[i, c, s].sum(axis=-1), m[i, a, s].sum(axis=-1)
    lift = welch_ttest(
        _proportion(n_c, m[i, c, s, e]),
        _proportion(n_t, m[i, a, s, e]),
        alpha=alpha,
        relative_interval="delta",
    )
    families = [family.format(day=days[k], start=states[t]) for k, t in zip(i, s, strict=True)]
    adjusted = adjust_pvalues(lift.p_value, method=correction, groups=families)
    sizes = _family_sizes(families, lift.p_value)
    return [
        {
            "day": days[i[r]],
            "start": states[s[r]],
            "to": states[e[r]],
            "arm": arms[a[r]],
            "n_control": int(n_c[r]),
            "n_treatment": int(n_t[r]),
            "share_control": float(lift.mean_control[r]),
            "share_treatment": float(lift.mean_treatment[r]),
            "effect": float(lift.lift_abs[r]),
            "ci_low": float(lift.ci_abs_low[r]),
            "ci_high": float(lift.ci_abs_high[r]),
            "p_value": float(lift.p_value[r]),
            "p_adjusted": float(adjusted[r]),
            "significant": bool(adjusted[r] < alpha),
            "family": families[r],
            "family_size": sizes[families[r]],
        }
        for r in range(len(keys))
    ]


def _migration(
    counts: LifecycleCounts, c: int, *, alpha: float, correction: Correction
) -> tuple[MigrationRow, ...]:
    rows = _transitions(
        counts.migration,
        counts.days,
        counts.arms,
        c,
        states=STAGES,
        family="migration:{day}:{start}",
        alpha=alpha,
        correction=correction,
    )
    return tuple(MigrationRow(segment=r.pop("start"), **r) for r in rows)


def _segment_migration(
    counts: LifecycleCounts, c: int, *, alpha: float, correction: Correction
) -> tuple[SegmentMigrationRow, ...]:
    out: list[SegmentMigrationRow] = []
    for plan, m in zip(counts.rule_segments, counts.rule_migration, strict=True):
        rows = _transitions(
            m,
            counts.days,
            counts.arms,
            c,
            states=MEMBERSHIP,
            family=f"segment_migration:{plan.name}:{{day}}:{{start}}",
            alpha=alpha,
            correction=correction,
        )
        out += [SegmentMigrationRow(segment=plan.name, **r) for r in rows]
    return tuple(out)


def _family_sizes(family: list[str], p: NDArray[np.float64]) -> dict[str, int]:
    """Tests with a p-value per family (``nan`` ones are not corrected, so not counted)."""
    sizes = dict.fromkeys(family, 0)
    for f, value in zip(family, p, strict=True):
        sizes[f] += int(not np.isnan(value))
    return sizes


def _curves(counts: LifecycleCounts, alpha: float) -> tuple[SurvivalCurveRow, ...]:
    """Every (curve, segment, arm) curve with pointwise intervals (clipped to [0, 1])."""
    out: list[SurvivalCurveRow] = []
    for curve in counts.events:
        km = kaplan_meier(counts.events[curve], counts.exits[curve])
        low, high = pointwise_interval(km, alpha=alpha)
        for si, segment in enumerate(counts.segments):
            for a, arm in enumerate(counts.arms):
                if km.at_risk[si, a, 0] > 0:
                    out.append(
                        SurvivalCurveRow(
                            curve=curve,
                            segment=segment,
                            arm=arm,
                            survival=tuple(km.survival[si, a].tolist()),
                            ci_low=tuple(low[si, a].tolist()),
                            ci_high=tuple(high[si, a].tolist()),
                        )
                    )
    return tuple(out)


def _survival(
    counts: LifecycleCounts, c: int, days: list[int], *, alpha: float, correction: Correction
) -> tuple[SurvivalRow, ...]:
    """The treatment effect on every curve at each day, corrected per (curve, segment)."""
    rows: list[SurvivalRow] = []
    for curve in counts.events:
        km = kaplan_meier(counts.events[curve], counts.exits[curve])
        keys = [
            (si, a, d)
            for si in range(len(counts.segments))
            for a in range(len(counts.arms))
            if a != c and km.at_risk[si, a, 0] > 0 and km.at_risk[si, c, 0] > 0
            for d in days
        ]
        if not keys:
            continue
        si, a, d = np.asarray(keys, dtype=np.intp).T
        ctrl, treat = km[si, c, d], km[si, a, d]
        diff = survival_difference(ctrl, treat, alpha=alpha)
        p_value = np.where(_testable(km[si, c], km[si, a], d), diff.p_value, np.nan)
        family = [f"survival:{curve}:{counts.segments[k]}" for k in si]
        adjusted = adjust_pvalues(p_value, method=correction, groups=family)
        sizes = _family_sizes(family, p_value)
        rows += [
            SurvivalRow(
                curve=curve,
                segment=counts.segments[si[r]],
                arm=counts.arms[a[r]],
                day=int(d[r]),
                n_control=int(km.at_risk[si[r], c, 0]),
                n_treatment=int(km.at_risk[si[r], a[r], 0]),
                at_risk_control=int(ctrl.at_risk[r]),
                at_risk_treatment=int(treat.at_risk[r]),
                survival_control=float(ctrl.survival[r]),
                survival_treatment=float(treat.survival[r]),
                effect=float(diff.effect[r]),
                ci_low=float(diff.ci_low[r]),
                ci_high=float(diff.ci_high[r]),
                p_value=float(p_value[r]),
                p_adjusted=float(adjusted[r]),
                significant=bool(adjusted[r] < alpha),
                family=family[r],
                family_size=sizes[family[r]],
            )
            for r in range(len(keys))
        ]
    return tuple(rows)


def _testable(
    control: SurvivalCurve, treatment: SurvivalCurve, day: NDArray[np.intp]
) -> NDArray[np.bool_]:
    """Whether each arm expects >= MIN_EXPECTED events and non-events by ``day`` (pooled hazard).

    With fewer (e.g. 1 to 8 lapses in a small segment), no normal-approximation
    test can hold its level: the smallest p-value the discrete data can give is
    above 5%, and the A/A false-positive rate fell to 3% (README "Lifecycle analysis").
    """
    rows = np.arange(len(day))
    e_c, e_t = (e[rows, day] for e in expected_events(control, treatment))
    n_c, n_t = control.at_risk[:, 0], treatment.at_risk[:, 0]
    least = np.minimum.reduce([e_c, e_t, n_c - e_c, n_t - e_t])
    return np.asarray(least >= MIN_EXPECTED)


def _value(
    counts: LifecycleCounts, c: int, horizons: list[int], *, alpha: float
) -> tuple[ValueRow, ...]:
    rows: list[ValueRow] = []
    for h in horizons:
        proj = project_value(counts.spend, window=counts.window_days, horizon=h)
        for a, arm in enumerate(counts.arms):
            if a == c:
                continue
            diff = value_difference(proj[:, c], proj[:, a], alpha=alpha)
            n = counts.spend[0]
            rows += [
                ValueRow(
                    segment=segment,
                    arm=arm,
                    horizon=h,
                    n_control=int(n[si, c]),
                    n_treatment=int(n[si, a]),
                    value_control=float(proj.value[si, c]),
                    value_treatment=float(proj.value[si, a]),
                    decay_control=float(proj.decay[si, c]),
                    decay_treatment=float(proj.decay[si, a]),
                    effect=float(diff.effect[si]),
                    ci_low=float(diff.ci_low[si]),
                    ci_high=float(diff.ci_high[si]),
                    p_value=float(diff.p_value[si]),
                )
                for si, segment in enumerate(counts.segments)
                if n[si, c] > 0 and n[si, a] > 0
            ]
    return tuple(rows)


def analyze_lifecycle(
    counts: LifecycleCounts,
    *,
    control: str,
    alpha: float,
    correction: Correction,
    retention_days: list[int],
    horizons: list[int],
) -> Lifecycle:
    """Test migration and survival and project value from the engine's lifecycle counts.

    Args:
        counts: The engine's counts.
        control: The control arm.
        alpha: Significance level (intervals at ``1 - alpha``).
        correction: The multiple-testing correction (``holm``, ``bh``, ``none``).
        retention_days: Days at which the survival curves are compared (those past
            the window are left out).
        horizons: Horizons (days) of the value projection; the window itself is
            always added (the observed value).

    Returns:
        The ``lifecycle`` block of results.json.
    """
    c = counts.arms.index(control)
    window = counts.window_days
    days = sorted({d for d in retention_days if d <= window})
    return Lifecycle(
        days=counts.days,
        window_days=window,
        correction=correction,
        migration_family="per (day, starting stage): destinations x treatment arms",
        segment_migration_family=(
            "per (segment, day, starting state): destinations x treatment arms"
        ),
        survival_family="per (curve, segment): days x treatment arms",
        value_model=VALUE_MODEL,
        migration=_migration(counts, c, alpha=alpha, correction=correction),
        migration_segments=tuple(
            MigrationSegmentRow(segment=p.name, recomputed=p.recomputed, frozen=p.frozen)
            for p in counts.rule_segments
        ),
        segment_migration=_segment_migration(counts, c, alpha=alpha, correction=correction),
        survival=_survival(counts, c, days, alpha=alpha, correction=correction),
        curves=_curves(counts, alpha),
        value=_value(counts, c, sorted({window, *horizons}), alpha=alpha),
    )
