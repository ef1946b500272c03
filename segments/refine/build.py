"""Turn discovery choices into proposals measured on the estimation half.

Each builder takes what discovery chose (a cut, or a pair of segments), reads
the estimation half's sums of the resulting sides, and writes the proposal's
new segments. ``p_adjusted``, ``significant`` and ``summary`` are filled in
later by :func:`finish`, once every proposal's p-value is known.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from experiment.results.refinement import NewSegment, Proposal
from experiment.stats import adjust_pvalues
from segments.refine.estimate import DISCOVERY, ESTIMATION, cut_sums, side
from segments.refine.inference import equivalence_p, interaction_z, lift, two_sided_p
from segments.refine.propose import condition, conjoin, percent, safe_name, token, unparse

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.results.refinement import ProposalKind, Side
    from experiment.stats import LiftResult
    from segments.refine.candidates import ThresholdBase
    from segments.refine.choose import Best
    from segments.refine.search import Scan, Sums

__all__ = ["Context", "finish", "merge_proposals", "split_proposal", "threshold_proposal"]


@dataclass(frozen=True)
class Context:
    """What every builder needs: the experiment, the metric and arm, the names in use."""

    config: ExperimentConfig
    metric: str
    arm: str
    used: set[str]
    families: Mapping[str, frozenset[str]] = field(default_factory=dict)
    cuped: bool = False


def _sides(best: Best) -> tuple[tuple[str, str], tuple[str, str]]:
    """The (low, high) sides' (operator, value text) — for names and rules."""
    a = best.attribute
    if a.kind == "numeric":
        cut = a.edges[best.cut - 1]
        return ("<", token(cut)), (">=", token(cut))
    low = tuple(best.bins[i] for i in best.order[: best.cut])
    high = tuple(best.bins[i] for i in best.order[best.cut :])
    return ("in", "_".join(map(str, low))), ("in", "_".join(map(str, high)))


def _conditions(best: Best) -> tuple[str, str]:
    a = best.attribute
    if a.kind == "numeric":
        cut = a.edges[best.cut - 1]
        return condition(a.name, "<", cut), condition(a.name, ">=", cut)
    low = tuple(best.bins[i] for i in best.order[: best.cut])
    high = tuple(best.bins[i] for i in best.order[best.cut :])
    return condition(a.name, "in", low), condition(a.name, "in", high)


def _measure(
    best: Best, names: tuple[str, str], rules: tuple[str, str], ctx: Context
) -> tuple[tuple[Side, Side], float, bool]:
    """Both sides on the estimation half, low then high; the interaction p; high first?"""
    est = cut_sums(best, ESTIMATION)
    disc = cut_sums(best, DISCOVERY)
    out: list[tuple[Side, LiftResult]] = []
    for k in (0, 1):
        full = (float(est[k][0].n[0] + disc[k][0].n[0]), float(est[k][1].n[0] + disc[k][1].n[0]))
        out.append(
            side(
                names[k],
                rules[k],
                control=est[k][0],
                treatment=est[k][1],
                full_n=full,
                config=ctx.config,
                cuped=ctx.cuped,
            )
        )
    z = interaction_z(out[1][1], out[0][1])
    sides = (out[1][0], out[0][0]) if best.high_first else (out[0][0], out[1][0])
    p = math.nan if any(s.reason for s, _ in out) else float(two_sided_p(z)[0])
    return sides, p, best.high_first


def _untested(sides: tuple[Side, Side]) -> str:
    """Why a proposal has no test: a side without events in an arm (``""``: tested)."""
    for s in sides:
        if s.reason:
            arm = s.reason.removeprefix("no_").removesuffix("_events")
            return (
                f"side {s.name!r} has no {arm} events on the estimation half: no interval, no test"
            )
    return ""


def _proposal(
    kind: ProposalKind,
    segment: str,
    best: Best,
    *,
    sides: tuple[Side, Side],
    new: tuple[NewSegment, ...],
    p: float,
    summary: str,
    ctx: Context,
) -> Proposal:
    a = best.attribute
    groups = None
    if a.kind == "categorical":
        low = tuple(str(best.bins[i]) for i in best.order[: best.cut])
        high = tuple(str(best.bins[i]) for i in best.order[best.cut :])
        groups = (high, low) if best.high_first else (low, high)
    return Proposal(
        kind=kind,
        segment=segment,
        metric=ctx.metric,
        arm=ctx.arm,
        attribute=a.name,
        threshold=a.edges[best.cut - 1] if a.kind == "numeric" else None,
        groups=groups,
        sides=sides,
        new_segments=new,
        candidates=best.candidates,
        discovery_z=best.z,
        interaction_p=p,
        p_adjusted=math.nan,
        significant=False,
        summary=summary,
        reason=_untested(sides),
    )


def split_proposal(segment: str, parent: str, best: Best, ctx: Context) -> Proposal:
    """Split ``segment`` (rule text ``parent``; ``""`` for ``all``) at the chosen cut."""
    tags = {"<": "lt", ">=": "ge", "in": ""}
    a = best.attribute.name
    names = [safe_name([segment, a, tags[op], tag], ctx.used) for op, tag in _sides(best)]
    conds = _conditions(best)
    rules = (conjoin(parent, conds[0]), conjoin(parent, conds[1]))
    sides, p, high_first = _measure(best, (names[0], names[1]), rules, ctx)
    new = tuple(
        NewSegment(name=s.name, where=s.rule, description=f"{segment} split on {a} by exp refine")
        for s in sides
    )
    ordered = (conds[1], conds[0]) if high_first else conds
    summary = _split_summary(segment, sides, ordered, p)
    return _proposal("split", segment, best, sides=sides, new=new, p=p, summary=summary, ctx=ctx)


def threshold_proposal(base: ThresholdBase, best: Best, ctx: Context) -> Proposal:
    """Move the cut-off of ``base``'s comparison to the chosen one (tighten or loosen).

    The segment keeps its side of the comparison and every other condition of its
    rule, in place: only the bound moves, and the new segment's rule (its label
    too) is the whole rule with the new bound.
    """
    rest = unparse(base.rest) if base.rest is not None else ""
    cut = best.attribute.edges[best.cut - 1]
    low, high = _conditions(best)
    mine, theirs = (high, low) if base.keeps_high else (low, high)
    tag = ("ge", "lt") if base.keeps_high else ("lt", "ge")
    kept_rule = conjoin(
        *(mine if i == base.index else unparse(part) for i, part in enumerate(base.parts))
    )
    names = (
        safe_name([base.segment, base.column, tag[0], token(cut)], ctx.used),
        safe_name([base.segment, "outside", base.column, tag[1], token(cut)], ctx.used),
    )
    rules = (kept_rule, conjoin(rest, theirs))
    if base.keeps_high:  # _measure takes (low, high)
        names, rules = names[::-1], rules[::-1]
    sides, p, _ = _measure(best, names, rules, ctx)
    kept = next(s for s in sides if s.rule == kept_rule)
    other = next(s for s in sides if s is not kept)
    was = f"{base.column} {base.op} {base.value:g}"
    summary = _split_summary(
        f"{base.segment} (instead of {was})", (kept, other), (kept_rule, conjoin(rest, theirs)), p
    )
    new = (
        NewSegment(
            name=kept.name,
            where=kept.rule,
            description=f"{base.segment} with {was} moved to {mine} by exp refine",
        ),
    )
    return _proposal(
        "threshold",
        base.segment,
        best,
        sides=(kept, other),
        new=new,
        p=p,
        summary=summary,
        ctx=ctx,
    )


def merge_proposals(
    totals: Scan,
    groups: list[int],
    names: dict[int, str],
    parents: dict[str, str],
    ctx: Context,
) -> list[Proposal]:
    """Each segment with its nearest neighbour by discovery lift, tested for equivalence.

    Only segments of one family are paired: rules on the same columns (``ctx.families``,
    e.g. two bands of ``sessions_30d``), so that a merge reads as one wider band
    and never as "engaged or dormant". A segment alone in its family is not merged.
    """
    cols = [k for k, g in enumerate(groups) if g != 0]
    if len(cols) < 2:
        return []
    disc = lift(totals.control[0, 0], totals.treatment[0, 0], 0.05, cuped=ctx.cuped)
    families = ctx.families
    pairs: dict[tuple[int, int], int] = {}
    for k in cols:
        family = families.get(names[groups[k]])
        kin = [o for o in cols if o != k and family and families.get(names[groups[o]]) == family]
        others = [o for o in kin if np.isfinite(disc.lift_rel[o])]
        if not np.isfinite(disc.lift_rel[k]) or not others:
            continue
        o = min(others, key=lambda o: abs(disc.lift_rel[o] - disc.lift_rel[k]))
        pairs[(min(k, o), max(k, o))] = len(kin)
    out = []
    for (k, o), n_kin in sorted(pairs.items()):
        a, b = names[groups[k]], names[groups[o]]
        sides = (
            _merged_side(totals, k, a, parents[a], ctx),
            _merged_side(totals, o, b, parents[b], ctx),
        )
        dz = (disc.lift_rel[k] - disc.lift_rel[o]) / np.hypot(disc.se_rel[k], disc.se_rel[o])
        out.append(_merge(a, b, sides, float(dz), parents, candidates=n_kin, ctx=ctx))
    return out


def _merged_side(
    totals: Scan, col: int, name: str, rule: str, ctx: Context
) -> tuple[Side, LiftResult]:
    """One segment of a merge, measured on the estimation half (column ``col`` of ``totals``)."""
    full = (float(totals.control.n[:, 0, col].sum()), float(totals.treatment.n[:, 0, col].sum()))
    est_c: Sums = totals.control[ESTIMATION, 0, [col]]
    est_t: Sums = totals.treatment[ESTIMATION, 0, [col]]
    return side(
        name, rule, control=est_c, treatment=est_t, full_n=full, config=ctx.config, cuped=ctx.cuped
    )


def _merge(
    a: str,
    b: str,
    measured: tuple[tuple[Side, LiftResult], tuple[Side, LiftResult]],
    dz: float,
    parents: dict[str, str],
    *,
    candidates: int,
    ctx: Context,
) -> Proposal:
    """The proposal to merge ``a`` and ``b``: their union, if their lifts are equivalent."""
    z = interaction_z(measured[0][1], measured[1][1])
    name = safe_name([a, "or", b], ctx.used)
    where = " or ".join(
        r if r.startswith("segment(") and " " not in r else f"({r})"
        for r in (parents[a], parents[b])
    )
    margin = ctx.config.target_lift
    sa, sb = measured[0][0], measured[1][0]
    reason = _untested((sa, sb))
    eq = math.nan if reason else float(equivalence_p(measured[0][1], measured[1][1], margin)[0])
    summary = (
        f"{a} and {b}: lifts {_ci(sa)} and {_ci(sb)}, equivalent within "
        f"±{100 * margin:g}% by TOST p = {eq:.2g} ({_ADJUSTED})"
    )
    return Proposal(
        kind="merge",
        segment=a,
        metric=ctx.metric,
        arm=ctx.arm,
        attribute=None,
        threshold=None,
        groups=None,
        sides=(sa, sb),
        new_segments=(
            NewSegment(name=name, where=where, description=f"{a} and {b} merged by exp refine"),
        ),
        candidates=candidates,
        discovery_z=dz,
        interaction_p=math.nan if reason else float(two_sided_p(z)[0]),
        p_adjusted=math.nan,
        significant=False,
        summary=summary,
        equivalence_p=eq,
        reason=reason,
    )


_ADJUSTED = "\x00adjusted\x00"  # filled in by finish()


def _ci(s: Side) -> str:
    low, high = (percent(v).rstrip("%") for v in (s.ci_low, s.ci_high))
    return f"{percent(s.lift_rel)} [{low}, {high}]"


def _split_summary(segment: str, sides: tuple[Side, Side], conds: tuple[str, str], p: float) -> str:
    a, b = sides
    return (
        f"{segment}: lift is {_ci(a)} at {conds[0]} and {_ci(b)} at {conds[1]} "
        f"(interaction p = {p:.2g}, {_ADJUSTED})"
    )


def finish(proposals: list[Proposal], config: ExperimentConfig) -> tuple[Proposal, ...]:
    """Adjust p-values (splits and thresholds together, merges apart) and write summaries.

    A split or threshold is significant when its adjusted interaction p-value is
    below ``alpha``; a merge when its adjusted equivalence p-value is.
    """
    if not proposals:
        return ()
    raw = [p.equivalence_p if p.kind == "merge" else p.interaction_p for p in proposals]
    family = ["merge" if p.kind == "merge" else "split" for p in proposals]
    adjusted = adjust_pvalues(
        np.array(raw, dtype=np.float64), method=config.correction, groups=family
    )
    label = {"holm": "Holm-adjusted", "bh": "BH-adjusted", "none": "not adjusted"}[
        config.correction
    ]
    out = []
    for p, value in zip(proposals, adjusted, strict=True):
        adj = float(value)
        text = f"{label} {adj:.2g}" if config.correction != "none" else label
        if p.reason:
            text = f"not tested: {p.reason}"
        out.append(
            replace(
                p,
                p_adjusted=adj,
                significant=bool(adj < config.alpha),
                summary=p.summary.replace(_ADJUSTED, text),
            )
        )
    return tuple(out)
