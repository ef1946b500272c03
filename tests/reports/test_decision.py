from dataclasses import replace

import pytest

from experiment.results import SegmentSrm
from experiment.results.decision import decide, decisions
from tests.fixtures.results import make_results, make_row

WIN = make_row("s", "conversion", 0.10, 0.05)
FLAT = make_row("s", "conversion", 0.00, 0.05)
LOSS = make_row("s", "conversion", -0.10, 0.05)
GUARD_OK = make_row("s", "revenue", 0.00, 0.05)
GUARD_HARM = make_row("s", "revenue", -0.10, 0.05)


@pytest.mark.parametrize(
    ("rows", "srm", "expected"),
    [
        ([WIN, GUARD_OK], False, "ship"),
        ([WIN, GUARD_HARM], False, "don't ship"),
        ([LOSS, GUARD_OK], False, "don't ship"),
        ([FLAT, GUARD_OK], False, "keep testing"),
        ([FLAT, GUARD_HARM], False, "don't ship"),
        ([WIN, GUARD_OK], True, "keep testing"),
        ([replace(WIN, p_value=float("nan")), GUARD_OK], False, "no data"),
    ],
)
def test_decide_rule(rows, srm, expected):
    assert decide(rows, srm_flag=srm) == expected


def test_decide_suppressed_primary_is_no_decision():
    row = replace(WIN, suppressed=True)
    assert decide([row, GUARD_OK]) == "below minimum size"


def test_decisions_group_by_segment_and_arm_primary_first():
    rows = (
        make_row("all", "conversion", 0.1, 0.05),
        make_row("vip", "conversion", 0.0, 0.05, underpowered=True),
        make_row("all", "revenue", 0.0, 0.05),
        make_row("vip", "revenue", 0.0, 0.05),
        replace(make_row("vip", "conversion", 0.1, 0.05), arm="b"),
    )
    made = decisions(replace(make_results(), results=rows))
    assert [(d.segment, d.arm, d.kind) for d in made] == [
        ("all", "treatment", "ship"),
        ("vip", "treatment", "keep testing"),
        ("vip", "b", "ship"),
    ]
    assert made[1].underpowered
    assert "underpowered" in made[1].reason


def test_decisions_segment_srm_blocks_shipping_that_segment_only():
    rows = (make_row("all", "conversion", 0.1, 0.05), make_row("vip", "conversion", 0.1, 0.05))
    base = make_results()
    vip = SegmentSrm(segment="vip", p_value=1e-6, observed={"control": 10}, flag=True)
    results = replace(base, results=rows, srm=replace(base.srm, segments=(vip,)))
    kinds = {d.segment: (d.kind, d.reason) for d in decisions(results)}
    assert kinds["all"][0] == "ship"
    assert kinds["vip"] == (
        "keep testing",
        "sample ratio mismatch: fix the assignment before deciding",
    )


def test_decide_guardrail_breach_blocks_shipping():
    breach = replace(make_row("s", "revenue", -0.03, 0.05), guardrail_breached=True)
    assert decide([WIN, replace(breach, significant=False)]) == "don't ship"
    assert decide([WIN, replace(breach, guardrail_breached=False, significant=False)]) == "ship"
    assert decide([WIN, replace(breach, suppressed=True, significant=False)]) == "ship"


def test_decisions_name_the_breached_guardrail():
    breach = replace(make_row("all", "revenue", -0.03, 0.5), guardrail_breached=True)
    win = make_row("all", "conversion", 0.10, 0.05)
    (decision,) = decisions(replace(make_results(), results=(win, breach)))
    assert decision.kind == "don't ship"
    assert decision.reason == "guardrail breached: revenue"


def test_decide_follows_a_lower_is_better_metric():
    fewer = replace(LOSS, metric="unsubscribes", higher_is_better=False)  # significant fall
    more = replace(WIN, metric="unsubscribes", higher_is_better=False)  # significant rise
    assert decide([fewer, GUARD_OK]) == "ship"
    assert decide([more, GUARD_OK]) == "don't ship"
    assert decide([WIN, replace(GUARD_HARM, higher_is_better=False)]) == "ship"
    assert decide([WIN, replace(GUARD_OK, higher_is_better=False, lift_rel=0.1)]) == "ship"


def test_decisions_name_a_worse_lower_is_better_metric():
    win = make_row("all", "conversion", 0.10, 0.05)
    more = replace(make_row("all", "unsubscribes", 0.2, 0.05), higher_is_better=False)
    (decision,) = decisions(replace(make_results(), results=(win, more)))
    assert decision.kind == "don't ship"
    assert decision.reason == "significantly worse: unsubscribes (lower is better)"
