"""Segment definitions: rules, lifecycle, crossed, cluster and predictive segments.

Parsed from a YAML file, compiled to Ibis expressions, evaluated in any engine.
"""

from segments.compile import compile_rule, compile_segments
from segments.definitions import (
    DEFAULT_MIN_SIZE,
    REST,
    SegmentDef,
    SegmentSet,
    load_segments,
    parse_segments,
)
from segments.lifecycle import STAGES, LifecycleConfig
from segments.membership import membership
from segments.models import fit_models, load_models
from segments.rules import parse_rule

__all__ = [
    "DEFAULT_MIN_SIZE",
    "REST",
    "STAGES",
    "LifecycleConfig",
    "SegmentDef",
    "SegmentSet",
    "compile_rule",
    "compile_segments",
    "fit_models",
    "load_models",
    "load_segments",
    "membership",
    "parse_rule",
    "parse_segments",
]
