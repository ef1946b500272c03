"""Typed results of ``exp target``: a rollout policy and its held-out value.

``exp target`` writes these as ``<out>.json`` beside the policy's segments file
and rollout YAML. The field names are a contract like results.json's: extra
fields may be added, none renamed (README, "Targeting: `exp target`").

The policy (which cell gets which arm) is learned on the *discovery* half of the
users only; every value below comes from the *estimation* half, which the
learner never saw, so the values are not inflated by the choice.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiment.errors import DataError
from experiment.results.display import Display
from experiment.results.jsonvalue import json_ready

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GainPoint", "PolicyCell", "PolicyValue", "Targeting", "load_targeting"]


@dataclass(frozen=True, kw_only=True)
class PolicyCell:
    """One cell of the policy: exclusive, in priority order (first match wins).

    ``rule`` is the cell's own rule (earlier cells excluded), self-contained (every
    ``segment("x")`` replaced by x's rule). ``share`` is its share
    of the analysed users (both halves; counts carry no outcome). ``arm`` is the arm
    the policy gives it (``""``: the control experience, untreated). ``gain`` is the
    discovery estimate the learner used: the primary metric's lift per user of that
    arm net of the cost (0 for untreated cells). ``lift_abs``, ``ci_abs_low`` and
    ``ci_abs_high`` are the held-out absolute lift of the arm the learner found best
    for the cell on discovery (``best_arm``), ``nan`` without a treated arm.
    ``parent`` names the segment a refined cell was split from (``""`` otherwise).
    """

    name: str
    rule: str
    parent: str
    users: int
    share: float
    arm: str
    best_arm: str
    gain: float
    lift_abs: float
    ci_abs_low: float
    ci_abs_high: float


@dataclass(frozen=True, kw_only=True)
class PolicyValue:
    """A policy's value per 1,000 customers on one metric, from the estimation half.

    ``policy``: ``learned``, ``treat_all`` (every cell gets the arm best overall on
    discovery), ``treat_none`` (0 by definition) or ``learned_vs_treat_all`` (the
    difference). ``value`` = ``1000 × Σ share_c × lift_abs_c × scale`` over the treated
    cells (``scale``: 1, or a ratio metric's control mean denominator, so the value is
    the numerator's change); ``ci_low``/``ci_high`` its normal interval at the
    experiment's confidence from the cells' independent held-out variances;
    ``p_value`` the two-sided test of 0; ``share_treated`` the policy's treated share.
    ``guardrail``: the metric is not the one the policy was learned on.
    """

    metric: str
    policy: str
    value: float
    ci_low: float
    ci_high: float
    p_value: float
    share_treated: float
    guardrail: bool
    higher_is_better: bool = True


@dataclass(frozen=True, kw_only=True)
class GainPoint:
    """One point of the gain (Qini) curve: the top ``cells`` cells by discovery gain treated.

    Each treated cell gets its discovery-best arm; ``value``/``ci_low``/``ci_high``
    are the held-out value per 1,000 customers of that policy (primary metric).
    """

    cells: int
    share_treated: float
    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, kw_only=True, repr=False)
class Targeting(Display):
    """Everything ``exp target`` learned and measured.

    ``recommendation``: ``policy`` (roll out the learned policy), ``treat_all`` (the
    learned policy treats everyone alike) or ``no_change`` (keep the control
    experience); ``reason`` says why, in words.
    """

    experiment: str
    metric: str
    control: str
    arms: tuple[str, ...]
    alpha: float
    seed: int
    cost: float
    budget: float
    discovery_users: int
    estimation_users: int
    attributes: tuple[str, ...]
    cells: tuple[PolicyCell, ...]
    values: tuple[PolicyValue, ...]
    gain_curve: tuple[GainPoint, ...]
    recommendation: str
    reason: str
    schema_version: int = 1

    def value_of(self, policy: str, metric: str | None = None) -> PolicyValue:
        """The value of ``policy`` on ``metric`` (default: the primary metric)."""
        wanted = metric or self.metric
        for v in self.values:
            if v.policy == policy and v.metric == wanted:
                return v
        raise KeyError((policy, wanted))

    def to_json(self) -> str:
        """The JSON document (strict JSON: NaN and infinities become ``null``)."""
        return json.dumps(json_ready(asdict(self)), indent=2, allow_nan=False) + "\n"

    def to_pandas(self) -> pd.DataFrame:
        """One row per cell: its rule, share, arm, discovery gain and held-out lift."""
        import pandas as pd

        return pd.DataFrame(
            [asdict(c) for c in self.cells], columns=[f.name for f in fields(PolicyCell)]
        )

    def _headline(self) -> str:
        v = self.value_of("learned")
        treated = sum(1 for c in self.cells if c.arm)
        return (
            f"{self.metric}: {treated} of {len(self.cells)} cells treated, "
            f"{v.value:.4g} per 1,000 customers [{v.ci_low:.4g}, {v.ci_high:.4g}]; "
            f"{self.recommendation}"
        )

    @classmethod
    def from_json_dict(cls, doc: dict[str, Any]) -> Targeting:
        """Rebuild from a parsed document (``null`` numbers become ``nan``)."""

        def build(kind: type[Any], row: dict[str, Any]) -> Any:
            names = {f.name for f in fields(kind)}
            return kind(**{k: _nan(v) for k, v in row.items() if k in names})

        return cls(
            **{
                **{f.name: doc[f.name] for f in fields(cls) if f.name in doc},
                "arms": tuple(doc["arms"]),
                "attributes": tuple(doc["attributes"]),
                "cells": tuple(build(PolicyCell, c) for c in doc["cells"]),
                "values": tuple(build(PolicyValue, v) for v in doc["values"]),
                "gain_curve": tuple(build(GainPoint, g) for g in doc["gain_curve"]),
            }
        )


def _nan(value: Any) -> Any:
    return math.nan if value is None else value


def load_targeting(path: Path) -> Targeting:
    """Read a policy evidence JSON written by ``exp target``.

    Raises:
        DataError: the file is missing or is not a seglift targeting document.
    """
    from experiment.textfile import read_json

    doc = read_json(Path(path), what="targeting", error=DataError)
    try:
        return Targeting.from_json_dict(doc)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a seglift targeting file ({exc})") from None
