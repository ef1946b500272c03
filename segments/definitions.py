"""The segments file: rule, crossed, cluster and predictive segments, parsed when loaded.

A file lists segments in priority order. Each entry is one of:

* ``where: RULE``: a rule segment (see :mod:`segments.rules`);
* ``cross: [lifecycle, device]``: one segment per combination of the columns'
  values (a one-column cross is a "family"), skipping combinations under ``min_size``;
* ``cluster: {features: [...], k: auto}``: k-means clusters on standardised features;
* ``predict: {target: RULE, features: [...], bands: {...}}``: score bands of a
  logistic propensity model; the target is a rule on customer columns or an
  event target ``{event: purchase, days: 14}`` (see :class:`EventTarget`).

``min_size`` (default 100) is the privacy floor, ``exclusive: true`` makes the
set first-match-wins plus ``rest``, and ``lifecycle:`` tunes the built-in
``lifecycle`` column (:mod:`segments.lifecycle`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from experiment.config import format_validation_error, read_yaml
from experiment.errors import ConfigError, RuleError
from experiment.filemodel import FileModel
from segments.lifecycle import LifecycleConfig
from segments.rules import Node, parse_rule, segments_of

__all__ = [
    "DEFAULT_MIN_SIZE",
    "RESERVED_NAMES",
    "REST",
    "ClusterSpec",
    "EventTarget",
    "PredictSpec",
    "SegmentDef",
    "SegmentSet",
    "load_segments",
    "models_path",
    "parse_segments",
]

REST = "rest"
RESERVED_NAMES = frozenset({"all", REST})
DEFAULT_MIN_SIZE = 100
_MAX_SAMPLE = 10_000_000  # rows pulled from the engine to fit a model
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

SegmentKind = Literal["rule", "cross", "cluster", "predict"]


class _Frozen(FileModel):
    """Frozen, no unknown field, finite numbers (:class:`experiment.filemodel.FileModel`)."""


def _listed_once(columns: list[str], field: str) -> list[str]:
    """``columns`` if none repeats (a repeat would weigh a feature twice or name cells twice)."""
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise ValueError(f"{field} lists column {twice[0]!r} twice; list each column once")
    return columns


class ClusterSpec(_Frozen):
    """k-means on standardised numeric features; ``k="auto"`` picks k by silhouette."""

    features: list[str] = Field(min_length=1)
    k: int | Literal["auto"] = "auto"
    k_max: int = Field(default=8, ge=2, le=20)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    sample: int = Field(default=20_000, ge=100, le=_MAX_SAMPLE)

    @field_validator("features")
    @classmethod
    def _features_once(cls, features: list[str]) -> list[str]:
        return _listed_once(features, "features")

    @field_validator("k")
    @classmethod
    def _k(cls, k: int | str) -> int | str:
        if isinstance(k, int) and not 2 <= k <= 20:
            raise ValueError("k must be 'auto' or an integer from 2 to 20")
        return k


class EventTarget(_Frozen):
    """A target event: at least one ``event`` in the ``days`` days after the reference time.

    ``absent: true`` flips it to "no such event" (churn: no ``session`` in 14 days).
    The reference time is the user's ``assigned_at`` in ``experiment`` (default: the
    only experiment in the assignments), and only its ``control`` arm is labelled:
    treated users' behaviour carries the treatment effect, so a model fitted on them
    would learn the treatment, not the customer's own propensity. Without
    assignments, ``as_of`` is everyone's reference time. Labels are computed from
    the events table when fitting; membership needs customer columns only.
    """

    event: str = Field(min_length=1)
    days: int = Field(le=3650)
    absent: bool = False
    experiment: str | None = None
    control: str = "control"
    as_of: dt.datetime | None = None

    @field_validator("as_of")
    @classmethod
    def _utc(cls, as_of: dt.datetime | None) -> dt.datetime | None:
        if as_of is not None and as_of.tzinfo is None:
            return as_of.replace(tzinfo=dt.UTC)
        return as_of

    def describe(self) -> str:
        """The target in words: ``at least one purchase within 14 days``."""
        what = f"no {self.event}" if self.absent else f"at least one {self.event}"
        return f"{what} within {self.days} days"


class PredictSpec(_Frozen):
    """A logistic propensity model of ``target`` and segments by score band.

    ``target`` is a rule on customer columns or an :class:`EventTarget`. ``bands``
    maps a band name to ``[low, high]`` quantiles of the score, e.g.
    ``top_decile: [0.9, 1.0]``.
    """

    target: EventTarget | str
    features: list[str] = Field(min_length=1)
    bands: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"top_decile": (0.9, 1.0)}, min_length=1
    )
    # 5% at least: a tinier share left no customer to score the model on (AUC nan)
    holdout: float = Field(default=0.3, ge=0.05, lt=1)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    sample: int = Field(default=50_000, ge=200, le=_MAX_SAMPLE)
    l2: float = Field(default=1e-3, ge=0, le=10)

    @field_validator("features")
    @classmethod
    def _features_once(cls, features: list[str]) -> list[str]:
        return _listed_once(features, "features")

    @field_validator("bands")
    @classmethod
    def _bands(cls, bands: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in bands.items():
            if not _NAME.match(name):
                raise ValueError(f"band name {name!r} must use letters, digits, _ or -")
            if not 0 <= low < high <= 1:
                raise ValueError(f"band {name!r} must be [low, high] with 0 <= low < high <= 1")
        return bands


class _SegmentModel(_Frozen):
    name: str | None = None
    where: str | None = None
    cross: list[str] | None = Field(default=None, min_length=1, max_length=4)
    cluster: ClusterSpec | None = None
    predict: PredictSpec | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str | None) -> str | None:
        if name is None:
            return name
        if not _NAME.match(name) or len(name) > 64:
            raise ValueError(
                f"segment name {name!r} must start with a letter or _ and use letters, "
                "digits, _ or - (at most 64)"
            )
        if name in RESERVED_NAMES:
            raise ValueError(f"segment name {name!r} is reserved")
        return name

    @field_validator("cross")
    @classmethod
    def _columns_once(cls, cross: list[str] | None) -> list[str] | None:
        return None if cross is None else _listed_once(cross, "cross")

    @model_validator(mode="after")
    def _one_kind(self) -> _SegmentModel:
        kinds = [k for k in ("where", "cross", "cluster", "predict") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("each segment needs exactly one of: where, cross, cluster, predict")
        if self.name is None and kinds[0] != "cross":
            raise ValueError(f"a '{kinds[0]}' segment needs a name")
        return self


class _FileModel(_Frozen):
    segments: list[_SegmentModel] = Field(min_length=1, max_length=1000)
    min_size: int = Field(default=DEFAULT_MIN_SIZE, ge=1, le=1_000_000_000)
    exclusive: bool = False
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)


@dataclass(frozen=True)
class SegmentDef:
    """One entry of a segments file.

    ``rule`` is set for rule segments (``kind="rule"``); ``cross``, ``cluster`` and
    ``predict`` hold the other kinds' specifications. Crossed, cluster and
    predictive entries expand into several segments when compiled.
    """

    name: str
    where: str
    rule: Node | None
    description: str = ""
    kind: SegmentKind = "rule"
    cross: tuple[str, ...] = ()
    cluster: ClusterSpec | None = None
    predict: PredictSpec | None = None
    target: Node | None = None


@dataclass(frozen=True)
class SegmentSet:
    """The segments of one file, in file (priority) order, and the file's options."""

    segments: tuple[SegmentDef, ...]
    source: str
    min_size: int = DEFAULT_MIN_SIZE
    exclusive: bool = False
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)

    @property
    def names(self) -> list[str]:
        """Entry names in file order (crossed/cluster/predictive entries expand later)."""
        return [s.name for s in self.segments]

    @property
    def sidecar(self) -> Path:
        """Where fitted cluster and predictive models live: ``<file>.models.json``."""
        return models_path(Path(self.source))


def models_path(segments_file: Path) -> Path:
    """Where a segments file's fitted models live: ``<stem>.models.json`` beside it."""
    return segments_file.with_name(f"{segments_file.stem}.models.json")


def _parse(source: str, seg: _SegmentModel, what: str, text: str) -> Node:
    try:
        return parse_rule(text)
    except RuleError as exc:
        raise RuleError(f"{source}: segment {seg.name!r}: {what}{exc}") from None


def _check_event_target(source: str, seg: _SegmentModel, target: EventTarget) -> None:
    where = f"{source}: segment {seg.name!r}: target"
    if target.days <= 0:
        raise ConfigError(
            f"{where} days must be a positive whole number of days, not {target.days}"
        )
    if target.experiment is not None and target.as_of is not None:
        raise ConfigError(f"{where}: give experiment (assignment times) or as_of, not both")


def _entry(source: str, seg: _SegmentModel) -> SegmentDef:
    if seg.where is not None:
        name = str(seg.name)
        return SegmentDef(name, seg.where, _parse(source, seg, "", seg.where), seg.description)
    if seg.cross is not None:
        name = seg.name or "_".join(seg.cross)
        return SegmentDef(name, "", None, seg.description, kind="cross", cross=tuple(seg.cross))
    if seg.cluster is not None:
        return SegmentDef(str(seg.name), "", None, seg.description, "cluster", cluster=seg.cluster)
    if seg.predict is None:  # pragma: no cover - the model validator guarantees one kind
        raise RuntimeError("Segment without a kind.")
    if isinstance(seg.predict.target, EventTarget):
        _check_event_target(source, seg, seg.predict.target)
        return SegmentDef(str(seg.name), "", None, seg.description, "predict", predict=seg.predict)
    target = _parse(source, seg, "target: ", seg.predict.target)
    if segments_of(target):
        raise RuleError(f"{source}: segment {seg.name!r}: target may not use segment()")
    return SegmentDef(
        str(seg.name), "", None, seg.description, "predict", predict=seg.predict, target=target
    )


def parse_segments(data: dict[str, Any], *, source: str) -> SegmentSet:
    """Validate a segments mapping (as read from YAML) and parse every rule.

    Raises:
        ConfigError: a field is missing or invalid, or a name repeats.
        RuleError: a rule does not parse; the message names the segment and position.
    """
    try:
        model = _FileModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(Path(source), exc)) from None
    seen: set[str] = set()
    parsed = []
    for seg in model.segments:
        entry = _entry(source, seg)
        if entry.name in seen:
            raise ConfigError(f"{source}: segment {entry.name!r} is defined twice")
        seen.add(entry.name)
        parsed.append(entry)
    return SegmentSet(
        segments=tuple(parsed),
        source=source,
        min_size=model.min_size,
        exclusive=model.exclusive,
        lifecycle=model.lifecycle,
    )


def load_segments(path: Path) -> SegmentSet:
    """Load a segments YAML file.

    Raises:
        ConfigError: missing file, invalid YAML or fields.
        RuleError: a rule is not valid.
    """
    return parse_segments(read_yaml(Path(path), what="segments"), source=str(path))
