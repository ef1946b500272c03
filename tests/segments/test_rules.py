import re
from pathlib import Path

import pytest

from experiment.errors import RuleError
from segments.rules import BoolOp, Column, Compare, Const, ConstList, Not, columns_of, parse_rule


def test_parse_rule_comparison_and_boolean_structure():
    node = parse_rule("days_since_last_login >= 14 and orders_90d == 0")
    assert isinstance(node, BoolOp)
    assert node.op == "and"
    assert node.operands[0] == Compare(">=", Column("days_since_last_login", 0), Const(14))


def test_parse_rule_in_list_not_and_negative_numbers():
    node = parse_rule('not (device in ["mobile", "tablet"] or score < -1.5)')
    assert isinstance(node, Not)
    inner = node.operand
    assert isinstance(inner, BoolOp)
    assert inner.op == "or"
    assert inner.operands[0] == Compare("in", Column("device", 5), ConstList(("mobile", "tablet")))
    assert inner.operands[1].right == Const(-1.5)  # type: ignore[union-attr]


def test_parse_rule_chained_comparison_becomes_and():
    node = parse_rule("1 <= orders_90d < 5")
    assert isinstance(node, BoolOp)
    assert [c.op for c in node.operands] == ["<=", "<"]  # type: ignore[union-attr]


def test_parse_rule_multiline_text_is_one_rule():
    assert parse_rule("a >= 1\n  and b == 2") == parse_rule("a >= 1 and b == 2")


def test_columns_of_lists_every_reference():
    assert [c for c, _ in columns_of(parse_rule("a > 1 and not (b == 'x' or c in [1])"))] == [
        "a",
        "b",
        "c",
    ]


@pytest.mark.parametrize(
    ("rule", "phrase"),
    [
        ("__import__('os').system('touch /tmp/seglift_pwned')", "function calls are not allowed"),
        ("().__class__.__bases__[0] == 1", "not allowed"),
        ("a.b == 1", "attribute access is not allowed"),
        ("open('x') == 1", "function calls are not allowed"),
        ("1=1; DROP TABLE customers", "not a valid rule"),
        ("a == 1; DROP TABLE customers", "not a valid rule"),
        ("a == 1 -- comment", "arithmetic is not allowed"),
        ("a + 1 > 2", "arithmetic is not allowed"),
        ("a[0] == 1", "subscripts are not allowed"),
        ("(lambda: 1)() == 1", "not allowed"),
        ("a is None", "'is' comparisons are not allowed"),
        ("a", "alone is not a condition"),
        ("1 == 1", "needs a column"),
        ("a in b", "needs a list"),
        ("a in [b]", "only numbers, strings"),
        ("", "the rule is empty"),
        ("a == None", "None is not a value"),
        ("x" * 10_001, "longer than"),
    ],
)
def test_parse_rule_rejects_unsafe_or_invalid(rule, phrase):
    with pytest.raises(RuleError, match=phrase) as info:
        parse_rule(rule)
    assert "\n" not in str(info.value)


def test_parse_rule_never_executes_the_text(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(RuleError):
        parse_rule(f"__import__('os').system('touch {marker}')")
    with pytest.raises(RuleError):
        parse_rule(f"open('{marker}', 'w').write('x') == 1")
    assert not marker.exists()
    assert not Path("/tmp/seglift_pwned").exists()


@pytest.mark.parametrize(
    ("rule", "phrase"),
    [
        ("not " * 1500 + "orders_90d >= 1", "nests more than 50 levels"),
        ("orders_90d > " + "- " * 3000 + "1", "nests more than 50 levels"),
        ("(a >= 1 and " * 60 + "a >= 1" + ")" * 60, "nests more than 50 levels"),
        ("a >= " + "1" * 40, "has 40 digits; integers must fit in 64 bits"),
        ("a >= 9223372036854775808", "has 19 digits"),
        ("a > -9223372036854775809", "has 19 digits"),
        ("a < 1e999", "too large for a float"),
        ("a in [1, -1e999]", "too large for a float"),
        ("between(a, 0, 1e400)", "too large for a float"),
        ("d == '" + "x" * 1001 + "'", "has 1,001 characters; at most 1,000"),
        ("d == 'a\x1bb'", "control character U+001B at column 8"),
        ("d == 'a\\x07b'", "holds the control character U+0007"),
        ("d == 'a\\u202eb'", "holds the control character U+202E"),
        ("d == 'a\x00'", "control character U+0000"),
        (
            "dayz_since(s) > 1",
            "unknown function 'dayz_since' at column 1; did you mean days_since()?",
        ),
        ("d == b'x'", "bytes literals are not allowed"),
        ("d == 1j", "complex numbers are not allowed"),
        ("d == ...", "Ellipsis is not allowed"),
    ],
)
def test_parse_rule_refuses_hostile_constants_and_nesting(rule, phrase):
    with pytest.raises(RuleError, match=re.escape(phrase)):
        parse_rule(rule)


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("a == 9223372036854775807", 9223372036854775807),
        ("a == -9223372036854775808", -9223372036854775808),
        ("a == 1.5e308", 1.5e308),
        ("d == '" + "x" * 1000 + "'", "x" * 1000),
        ("d == 'tab\\tand\\nline'", "tab\tand\nline"),
        ("d == 'caf\u00e9'", "caf\u00e9"),
    ],
)
def test_parse_rule_accepts_values_at_the_limits(rule, value):
    node = parse_rule(rule)
    assert isinstance(node, Compare)
    assert node.right == Const(value=value)


def test_parse_rule_accepts_nesting_up_to_the_cap():
    assert isinstance(parse_rule("not " * 40 + "a >= 1"), Not)
