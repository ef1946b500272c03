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
