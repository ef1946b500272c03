"""Rule text and names of proposed segments: always valid, never pasted user text."""

from __future__ import annotations

import re

import pytest

from segments import parse_segments
from segments.refine.propose import condition, parent_rules, safe_name, unparse
from segments.rules import ConstList, parse_rule

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@pytest.mark.parametrize(
    "levels",
    [("a'b", 'say "hi"'), ("back\\slash", "x) or (1 == 1"), ("ünï", "tab\tand"), (True, False)],
)
def test_condition_levels_round_trip_through_the_parser(levels: tuple[object, ...]) -> None:
    node = parse_rule(condition("col", "in", levels))  # type: ignore[arg-type]
    assert isinstance(node.right, ConstList)  # type: ignore[union-attr]
    assert node.right.values == levels  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [0.5202, -3.0, 1e-07, 123456789.0, 12.0])
def test_condition_number_round_trips(value: float) -> None:
    node = parse_rule(condition("x", ">=", value))
    assert node.right.value == value  # type: ignore[union-attr]


def test_unparse_round_trips_rules() -> None:
    """Unparsed text parses back to a tree that unparses to the same text."""
    for text in (
        "a >= 1 and not (b in ['x', 'y'] or is_null(c))",
        "between(days_since(d), 1, 30) or segment('v') and not_null(e)",
        "2 < x",
    ):
        assert unparse(parse_rule(unparse(parse_rule(text)))) == unparse(parse_rule(text))


def test_safe_name_is_valid_short_and_unique() -> None:
    used: set[str] = set()
    names = [safe_name(["vip" * 30, "price", "ge", "0_5"], used) for _ in range(3)]
    names.append(safe_name(["9lives", "tier", "", "a b/c"], used))
    assert len(set(names)) == 4
    assert all(NAME.match(n) and len(n) <= 64 for n in names)


def test_parent_rules_exclusive_file_excludes_earlier_segments() -> None:
    seg = parse_segments(
        {
            "exclusive": True,
            "segments": [
                {"name": "a", "where": "x >= 1"},
                {"name": "b", "where": "y >= 1"},
                {"name": "c", "cross": ["z"]},
                {"name": "d", "where": "w >= 1"},
            ],
        },
        source="s.yaml",
    )
    rules = parent_rules(seg, ("all", "a", "b", "c_1", "d", "rest"))
    assert rules == {"all": "", "a": 'segment("a")', "b": 'segment("b") and not (segment("a"))'}
