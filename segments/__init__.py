"""Segment definitions: the rule language, compilation to the engine, membership."""

from segments.compile import compile_rule, compile_segments
from segments.definitions import SegmentDef, SegmentSet, load_segments, parse_segments
from segments.membership import membership
from segments.rules import parse_rule

__all__ = [
    "SegmentDef",
    "SegmentSet",
    "compile_rule",
    "compile_segments",
    "load_segments",
    "membership",
    "parse_rule",
    "parse_segments",
]
