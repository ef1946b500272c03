"""Hand-made ``Refinement`` objects for the proposals writer, report and CLI tests.

The segments and columns are those of ``tests.conftest`` (buyers, mobile,
lapsed_desktop; orders_90d, days_since_last_login, device), so the proposed
rules compile against :func:`tests.conftest.write_dataset`.
"""

from __future__ import annotations

import math
from dataclasses import replace

from experiment.results.refinement import NewSegment, Proposal, Refinement, Side


def make_side(name: str, rule: str, lift_rel: float, half: float, users: int = 800) -> Side:
    mean_c = 0.04
    return Side(
        name=name,
        rule=rule,
        users=users,
        n_control=users // 4,
        n_treatment=users // 4,
        mean_control=mean_c,
        mean_treatment=mean_c * (1 + lift_rel),
        lift_abs=mean_c * lift_rel,
        lift_rel=lift_rel,
        ci_low=lift_rel - half,
        ci_high=lift_rel + half,
        p_value=0.004 if abs(lift_rel) > half else 0.6,
        mde_rel=0.21,
    )


def split_proposal(*, significant: bool = True) -> Proposal:
    """``buyers`` cut at days_since_last_login 30: the effect lives below it."""
    hi = "buyers_days_since_last_login_lt_30"
    lo = "buyers_days_since_last_login_ge_30"
    return Proposal(
        kind="split",
        segment="buyers",
        metric="conversion",
        arm="treatment",
        attribute="days_since_last_login",
        threshold=30.0,
        groups=None,
        sides=(
            make_side(hi, "days_since_last_login < 30", 0.18, 0.09),
            make_side(lo, "days_since_last_login >= 30", 0.01, 0.07),
        ),
        new_segments=(
            NewSegment(
                name=hi,
                where='segment("buyers") and days_since_last_login < 30',
                description="Recent buyers.",
            ),
            NewSegment(
                name=lo, where='segment("buyers") and days_since_last_login >= 30', description=""
            ),
        ),
        candidates=240,
        discovery_z=4.1,
        interaction_p=0.002,
        p_adjusted=0.02 if significant else 0.4,
        significant=significant,
        summary="buyers: lift is +18% [+9, +27] at days_since_last_login < 30 and +1% below.",
    )


def group_proposal() -> Proposal:
    """``lapsed_desktop`` by device: not significant, so a comment only."""
    a, b = "lapsed_desktop_device_desktop", "lapsed_desktop_device_tablet"
    return Proposal(
        kind="split",
        segment="lapsed_desktop",
        metric="conversion",
        arm="treatment",
        attribute="device",
        threshold=None,
        groups=(("desktop",), ("tablet",)),
        sides=(
            make_side(a, "device in ['desktop']", 0.05, 0.1),
            make_side(b, "device not in ['desktop']", -0.02, 0.1),
        ),
        new_segments=(
            NewSegment(
                name=a,
                where="segment(\"lapsed_desktop\") and device in ['desktop']",
                description="",
            ),
            NewSegment(
                name=b,
                where="segment(\"lapsed_desktop\") and device not in ['desktop']",
                description="",
            ),
        ),
        candidates=3,
        discovery_z=1.2,
        interaction_p=0.31,
        p_adjusted=0.62,
        significant=False,
        summary="",
    )


def merge_proposal() -> Proposal:
    """``buyers`` and ``mobile`` have equivalent lifts: merged."""
    return Proposal(
        kind="merge",
        segment="buyers",
        metric="conversion",
        arm="treatment",
        attribute=None,
        threshold=None,
        groups=None,
        sides=(
            make_side("buyers", 'segment("buyers")', 0.04, 0.03, users=1500),
            make_side("mobile", 'segment("mobile")', 0.05, 0.03, users=1000),
        ),
        new_segments=(
            NewSegment(
                name="buyers_or_mobile",
                where='segment("buyers") or segment("mobile")',
                description="Merged.",
            ),
        ),
        candidates=3,
        discovery_z=0.1,
        interaction_p=0.6,
        p_adjusted=0.01,
        equivalence_p=0.004,
        significant=True,
        summary="",
    )


def make_refinement(*proposals: Proposal, experiment: str = "exp1") -> Refinement:
    chosen = proposals or (split_proposal(), group_proposal(), merge_proposal())
    return Refinement(
        experiment=experiment,
        metric="conversion",
        arm="treatment",
        control="control",
        alpha=0.05,
        correction="holm",
        seed=0,
        discovery_users=1500,
        estimation_users=1500,
        attributes=("days_since_last_login", "device", "orders_90d"),
        candidates=sum(p.candidates for p in chosen),
        proposals=tuple(chosen),
    )


def with_nan(refinement: Refinement) -> Refinement:
    """A refinement whose first proposal's second side has no estimate."""
    first = refinement.proposals[0]
    side = replace(first.sides[1], lift_rel=math.nan, ci_low=math.nan, ci_high=math.nan)
    return replace(
        refinement,
        proposals=(replace(first, sides=(first.sides[0], side)), *refinement.proposals[1:]),
    )
