"""Typed results of ``exp refine``: proposed segment refinements and their held-out evidence.

``exp refine`` writes these as ``<out>.json`` beside the proposals YAML; the
report renders them (``exp report --refinement``). The field names are a
contract like results.json's: extra fields may be added, none renamed.

Every number describing a proposal's effect comes from the *estimation* half of
the users, which the search never saw; the search itself ran on the discovery
half. ``interaction_p`` tests, on the estimation half, whether the relative lifts
of the two sides differ; ``p_adjusted`` corrects it over all proposals tested
(``correction``, the experiment's).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from experiment.errors import DataError
from experiment.results.display import Display
from experiment.results.jsonvalue import json_ready

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "NewSegment",
    "Proposal",
    "ProposalKind",
    "Refinement",
    "Side",
    "load_refinement",
]

ProposalKind = Literal["split", "threshold", "merge"]


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side of a proposal, measured on the estimation half.

    ``rule`` is the side's rule text (within the parent segment for a split).
    ``ci_low``/``ci_high`` bound ``lift_rel`` (delta method), as in results.json.
    ``mde_rel`` is the relative MDE a follow-up experiment on this side would have
    with all of its users (both halves) at the experiment's alpha and power.
    ``reason`` is ``no_control_events`` or ``no_treatment_events`` when an arm of the
    side has no event (no conversion, a zero total) on the estimation half: its
    lift, interval and p-value are then ``nan`` (no test), ``""`` otherwise.
    """

    name: str
    rule: str
    users: int
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    lift_abs: float
    lift_rel: float
    ci_low: float
    ci_high: float
    p_value: float
    mde_rel: float
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class NewSegment:
    """A segment the proposal adds to the segments file (valid ``where`` rule text)."""

    name: str
    where: str
    description: str


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """One refinement of one segment (or, for ``merge``, of a pair of segments).

    ``kind``: ``split`` cuts the segment on an attribute (``threshold`` for a
    numeric one, ``groups`` for a categorical one); ``threshold`` moves the cut-off
    of a comparison already in the segment's rule (tighten or loosen); ``merge``
    joins two segments whose held-out lifts differ by less than the experiment's
    target lift (``significant`` then means "equivalent", tested two one-sided).

    ``sides`` are the two parts compared (split: the side with the larger
    discovery effect first; merge: the two segments). ``discovery_z`` is the
    search's best interaction z on the discovery half, kept only to explain the
    choice: no inference uses it. ``equivalence_p`` (merges only; ``nan`` otherwise)
    is the two one-sided tests' p-value that the sides' relative lifts differ by
    less than the target lift; a merge's ``p_adjusted`` corrects it over the merges.
    ``reason`` says why a proposal has no test (``""`` when it has one), e.g. a
    side without treatment events; such a proposal is in no family.
    """

    kind: ProposalKind
    segment: str
    metric: str
    arm: str
    attribute: str | None
    threshold: float | None
    groups: tuple[tuple[str, ...], tuple[str, ...]] | None
    sides: tuple[Side, Side]
    new_segments: tuple[NewSegment, ...]
    candidates: int
    discovery_z: float
    interaction_p: float
    p_adjusted: float
    significant: bool
    summary: str
    equivalence_p: float = math.nan
    reason: str = ""


@dataclass(frozen=True, kw_only=True, repr=False)
class Refinement(Display):
    """Everything ``exp refine`` found, with how it searched."""

    experiment: str
    metric: str
    arm: str
    control: str
    alpha: float
    correction: str
    seed: int
    discovery_users: int
    estimation_users: int
    attributes: tuple[str, ...]
    candidates: int
    proposals: tuple[Proposal, ...]
    schema_version: int = 1

    def to_json(self) -> str:
        """The JSON document (strict JSON: NaN and infinities become ``null``)."""
        return json.dumps(json_ready(asdict(self)), indent=2, allow_nan=False) + "\n"

    def to_pandas(self) -> pd.DataFrame:
        """One row per proposal: what it changes, the held-out test and its verdict."""
        import pandas as pd

        cols = ("kind", "segment", "metric", "arm", "attribute", "threshold", "candidates")
        tests = ("discovery_z", "interaction_p", "equivalence_p", "p_adjusted", "significant")
        rows = [
            {
                **{c: getattr(p, c) for c in (*cols, *tests)},
                "new_segments": ", ".join(n.name for n in p.new_segments),
                "summary": p.summary,
            }
            for p in self.proposals
        ]
        return pd.DataFrame(rows, columns=[*cols, *tests, "new_segments", "summary"])

    def _headline(self) -> str:
        added = sum(p.significant for p in self.proposals)
        return (
            f"{self.metric}, {self.arm} vs {self.control}; {len(self.proposals)} proposals "
            f"({added} significant) from {self.candidates} candidates on "
            f"{len(self.attributes)} attributes"
        )

    @classmethod
    def from_json_dict(cls, doc: dict[str, Any]) -> Refinement:
        """Rebuild from a parsed document (``null`` numbers become ``nan``)."""
        proposals = []
        for p in doc["proposals"]:
            sides = tuple(
                Side(**{k: v if k == "reason" else _nan(v) for k, v in s.items()})
                for s in p["sides"]
            )
            groups = p.get("groups")
            proposals.append(
                Proposal(
                    **{
                        **{f.name: _nan(p.get(f.name)) for f in fields(Proposal)},
                        "sides": (sides[0], sides[1]),
                        "groups": None if groups is None else (tuple(groups[0]), tuple(groups[1])),
                        "new_segments": tuple(NewSegment(**s) for s in p["new_segments"]),
                        "attribute": p.get("attribute"),
                        "threshold": p.get("threshold"),
                        "reason": p.get("reason") or "",
                    }
                )
            )
        return cls(
            **{
                **{f.name: doc[f.name] for f in fields(cls) if f.name in doc},
                "attributes": tuple(doc["attributes"]),
                "proposals": tuple(proposals),
            }
        )


def _nan(value: Any) -> Any:
    return math.nan if value is None else value


def load_refinement(path: Path) -> Refinement:
    """Read a refinement JSON written by ``exp refine``.

    Raises:
        DataError: the file is missing or is not a seglift refinement document.
    """
    from experiment.textfile import read_json

    doc = read_json(Path(path), what="refinement", error=DataError)  # bounded, strict
    try:
        return Refinement.from_json_dict(doc)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a seglift refinement file ({exc})") from None
