"""Views of an ``exp refine`` result: the report's Refinements section, in formatted strings.

The HTML template and the terminal table both read these; numbers are rounded
here (:mod:`reports.format`), user text is left raw for the template's
autoescaping (or rich's ``Text``) to escape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from experiment.results.refinement import Proposal, Refinement, Side
from reports.format import fmt_count, fmt_num, fmt_p, fmt_pct, fmt_pct_interval

__all__ = [
    "METHOD_NOTE",
    "ProposalView",
    "SideView",
    "describe_cut",
    "p_is",
    "proposal_views",
    "refinement_context",
    "verdict_of",
]

METHOD_NOTE = (
    "How these were found, honestly: every user was put at random into one of two halves. "
    "The search looked only at the discovery half, trying for each segment every cut of every "
    "customer attribute (numeric thresholds at quantiles, groupings of categories), and kept "
    "the cut where the two sides' relative lifts differed most. Each chosen cut was then "
    "measured on the estimation half, which the search never saw, so the lifts, intervals and "
    "p-values below are not inflated by the search. The interaction test asks whether the two "
    "sides' lifts differ; its p-values are corrected for the number of proposals tested. A "
    "merge joins two segments whose lifts are shown equivalent (two one-sided tests within the "
    "experiment's target lift, corrected over the merges). Follow-up MDE: the smallest "
    "relative lift a new experiment on that side alone, with all its users, would detect at "
    "the experiment's alpha and power."
)


@dataclass(frozen=True, kw_only=True)
class SideView:
    """One side of a proposal, formatted; ``label`` is a short name for narrow tables."""

    name: str
    rule: str
    label: str
    users: str
    held_out: str
    mean_control: str
    mean_treatment: str
    lift_rel: str
    ci: str
    p_value: str
    mde: str


@dataclass(frozen=True, kw_only=True)
class ProposalView:
    """One proposal, formatted: what it cuts, both sides, the test, the new rules.

    ``test_p`` is the p-value ``p_adjusted`` corrects: the interaction test's for a
    split or threshold, the equivalence test's (two one-sided) for a merge.
    """

    kind: str
    segment: str
    cut: str
    verdict: str
    significant: bool
    sides: tuple[SideView, SideView]
    test: str
    test_p: str
    interaction_p: str
    p_adjusted: str
    test_p_is: str
    interaction_p_is: str
    candidates: str
    discovery_z: str
    new_segments: tuple[tuple[str, str, str], ...]
    summary: str


def describe_cut(proposal: Proposal) -> str:
    """The cut a proposal makes, in words: ``split of 'vip' on price at 0.52``."""
    if proposal.kind == "merge":
        return f"merge of {proposal.sides[0].name!r} and {proposal.sides[1].name!r}"
    what = "split" if proposal.kind == "split" else "new threshold"
    head = f"{what} of {proposal.segment!r}"
    if proposal.attribute is None:
        return head
    if proposal.groups is not None:
        groups = " | ".join(", ".join(g) for g in proposal.groups)
        return f"{head} on {proposal.attribute} ({groups})"
    if proposal.threshold is not None:
        return f"{head} on {proposal.attribute} at {fmt_num(proposal.threshold, 4)}"
    return f"{head} on {proposal.attribute}"


def p_is(value: float) -> str:
    """``p = 0.042``, ``p < 0.001`` or ``p = –``.

    Examples:
        >>> p_is(0.0421), p_is(1e-9)
        ('p = 0.042', 'p < 0.001')
    """
    text = fmt_p(value)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def verdict_of(proposal: Proposal) -> str:
    """``proposed`` or ``not proposed``, with what a merge's significance means."""
    if not proposal.significant:
        return "not proposed"
    return "proposed (equivalent lifts)" if proposal.kind == "merge" else "proposed"


def _label(side: Side, kind: str) -> str:
    """A side's own condition: a split's last ``and`` clause, a moved threshold's whole rule.

    A merge's side is labelled by the segment's name. A moved threshold shows the
    whole rule, so a chained rule says which bound moved.
    """
    if kind == "merge":
        return side.name
    if kind == "threshold":
        return side.rule
    return side.rule.rsplit(" and ", 1)[-1]


def _side(side: Side, kind: str, digits: int = 4) -> SideView:
    return SideView(
        name=side.name,
        rule=side.rule,
        label=_label(side, kind),
        users=fmt_count(side.users),
        held_out=f"{fmt_count(side.n_control)} / {fmt_count(side.n_treatment)}",
        mean_control=fmt_num(side.mean_control, digits),
        mean_treatment=fmt_num(side.mean_treatment, digits),
        lift_rel=fmt_pct(side.lift_rel),
        ci=fmt_pct_interval(side.ci_low, side.ci_high) if not side.reason else side.reason,
        p_value=fmt_p(side.p_value),
        mde=fmt_pct(side.mde_rel, signed=False),
    )


def proposal_views(refinement: Refinement) -> list[ProposalView]:
    """Every proposal, significant ones first (then by adjusted p)."""

    def order(p: Proposal) -> tuple[bool, float]:
        return (not p.significant, p.p_adjusted if math.isfinite(p.p_adjusted) else math.inf)

    ordered = sorted(refinement.proposals, key=order)
    return [
        ProposalView(
            kind=p.kind,
            segment=p.segment,
            cut=describe_cut(p),
            verdict=verdict_of(p),
            significant=p.significant,
            sides=(_side(p.sides[0], p.kind), _side(p.sides[1], p.kind)),
            test="equivalence" if p.kind == "merge" else "interaction",
            test_p=fmt_p(p.equivalence_p if p.kind == "merge" else p.interaction_p),
            interaction_p=fmt_p(p.interaction_p),
            p_adjusted=fmt_p(p.p_adjusted),
            test_p_is=p_is(p.equivalence_p if p.kind == "merge" else p.interaction_p),
            interaction_p_is=p_is(p.interaction_p),
            candidates=fmt_count(p.candidates),
            discovery_z=fmt_num(p.discovery_z, 3),
            new_segments=tuple((s.name, s.where, s.description) for s in p.new_segments),
            summary=p.summary,
        )
        for p in ordered
    ]


def refinement_context(refinement: Refinement) -> dict[str, Any]:
    """What the report template's Refinements section reads."""
    return {
        "experiment": refinement.experiment,
        "metric": refinement.metric,
        "arm": refinement.arm,
        "control": refinement.control,
        "correction": refinement.correction,
        "alpha": fmt_num(refinement.alpha),
        "confidence": f"{1 - refinement.alpha:.0%}",
        "seed": refinement.seed,
        "discovery_users": fmt_count(refinement.discovery_users),
        "estimation_users": fmt_count(refinement.estimation_users),
        "candidates": fmt_count(refinement.candidates),
        "attributes": ", ".join(refinement.attributes),
        "n_proposals": len(refinement.proposals),
        "n_significant": sum(p.significant for p in refinement.proposals),
        "proposals": proposal_views(refinement),
        "note": METHOD_NOTE,
    }
