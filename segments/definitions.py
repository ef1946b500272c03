"""The segments file: named rule segments, parsed and checked when loaded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from experiment.config import format_validation_error, read_yaml
from experiment.errors import ConfigError, RuleError
from segments.rules import Node, parse_rule

__all__ = ["RESERVED_NAMES", "SegmentDef", "SegmentSet", "load_segments", "parse_segments"]

RESERVED_NAMES = frozenset({"all"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class _SegmentModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    where: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _NAME.match(name) or len(name) > 64:
            raise ValueError(
                f"segment name {name!r} must start with a letter or _ and use letters, "
                "digits, _ or - (at most 64)"
            )
        if name in RESERVED_NAMES:
            raise ValueError(f"segment name {name!r} is reserved for the whole population")
        return name


class _FileModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    segments: list[_SegmentModel] = Field(min_length=1)


@dataclass(frozen=True)
class SegmentDef:
    """One named segment with its parsed rule."""

    name: str
    where: str
    rule: Node
    description: str = ""


@dataclass(frozen=True)
class SegmentSet:
    """The segments of one file, in file order."""

    segments: tuple[SegmentDef, ...]
    source: str

    @property
    def names(self) -> list[str]:
        """Segment names in file order."""
        return [s.name for s in self.segments]


def parse_segments(data: dict[str, object], *, source: str) -> SegmentSet:
    """Validate a segments mapping (as read from YAML) and parse every rule.

    Raises:
        ConfigError: a field is missing or invalid, or a name repeats.
        RuleError: a rule does not parse; the message names the segment.
    """
    try:
        model = _FileModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(Path(source), exc)) from None
    seen: set[str] = set()
    parsed = []
    for seg in model.segments:
        if seg.name in seen:
            raise ConfigError(f"{source}: segment {seg.name!r} is defined twice")
        seen.add(seg.name)
        try:
            rule = parse_rule(seg.where)
        except RuleError as exc:
            raise RuleError(f"{source}: segment {seg.name!r}: {exc}") from None
        parsed.append(SegmentDef(seg.name, seg.where, rule, seg.description))
    return SegmentSet(segments=tuple(parsed), source=source)


def load_segments(path: Path) -> SegmentSet:
    """Load a segments YAML file.

    Raises:
        ConfigError: missing file, invalid YAML or fields.
        RuleError: a rule is not valid.
    """
    return parse_segments(read_yaml(Path(path), what="segments"), source=str(path))
