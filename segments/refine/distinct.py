"""One proposal per distinct cut: a split and a moved threshold can make the same cut.

A rule threshold moved to ``c`` and a split of the same segment (or of the
population the threshold's base covers) on the same attribute at ``c`` cut the
same users at the same place; tested twice, the cut would count twice in the
correction's family. Duplicates are dropped before the family is formed, keeping
the proposal with the larger discovery ``|z|`` (a choice made on the discovery half
only, so the held-out tests stay honest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from experiment.results.refinement import Proposal

__all__ = ["cut_key", "distinct"]


def cut_key(proposal: Proposal) -> tuple[Hashable, ...]:
    """What a split or threshold cuts: the segment, the attribute and the cut-off or grouping."""
    groups = None if proposal.groups is None else frozenset(map(frozenset, proposal.groups))
    return (proposal.segment, proposal.attribute, proposal.threshold, groups)


def distinct(proposals: Sequence[Proposal], base_of: Callable[[Proposal], str]) -> list[Proposal]:
    """``proposals`` without repeated cuts (first occurrence's place, larger ``|z|`` kept).

    Two proposals repeat a cut when they cut the same segment, or the same base
    population (``base_of``: a threshold's base rule, a split's segment's rule;
    ``""`` is everyone), on one attribute at one cut-off or grouping.
    """
    kept: dict[tuple[Hashable, ...], int] = {}
    out: list[Proposal] = []
    for p in proposals:
        base = base_of(p)
        keys = [cut_key(p), ("base", base, *cut_key(p)[1:])]
        seen = next((kept[k] for k in keys if k in kept), None)
        if seen is None:
            for k in keys:
                kept[k] = len(out)
            out.append(p)
        elif abs(p.discovery_z) > abs(out[seen].discovery_z):
            out[seen] = p
            for k in keys:
                kept[k] = seen
    return out
