"""The files and page of `exp target`: valid YAML, escaped HTML, a gain curve."""

import math

import yaml

from experiment.results.targeting import GainPoint, PolicyCell, PolicyValue, Targeting
from reports.targeting import gain_svg, policy_yaml, rollout_yaml, targeting_html
from segments import parse_segments


def _targeting() -> Targeting:
    cell = PolicyCell(
        name="vip",
        rule='country == "<script>alert(1)</script>"\nkey: value',
        parent="",
        users=10,
        share=0.25,
        arm="treatment",
        best_arm="treatment",
        gain=0.01,
        lift_abs=0.02,
        ci_abs_low=0.0,
        ci_abs_high=0.04,
    )
    other = PolicyCell(
        name="everyone_else",
        rule='not (country == "<script>alert(1)</script>")',
        parent="",
        users=30,
        share=0.75,
        arm="",
        best_arm="treatment",
        gain=0.0,
        lift_abs=math.nan,
        ci_abs_low=math.nan,
        ci_abs_high=math.nan,
    )
    value = PolicyValue(
        metric="conversion",
        policy="learned",
        value=5.0,
        ci_low=1.0,
        ci_high=9.0,
        p_value=0.01,
        share_treated=0.25,
        guardrail=False,
    )
    curve = (
        GainPoint(cells=0, share_treated=0.0, value=0.0, ci_low=0.0, ci_high=0.0),
        GainPoint(cells=1, share_treated=0.25, value=5.0, ci_low=1.0, ci_high=9.0),
    )
    return Targeting(
        experiment="e<1>",
        metric="conversion",
        control="control",
        arms=("treatment",),
        alpha=0.05,
        seed=0,
        cost=0.0,
        budget=1.0,
        discovery_users=20,
        estimation_users=20,
        attributes=(),
        cells=(cell, other),
        values=(value,),
        gain_curve=curve,
        recommendation="policy",
        reason="why\nnot",
    )


def test_policy_yaml_is_an_exclusive_segments_file_with_quoted_rules() -> None:
    t = _targeting()
    doc = yaml.safe_load(policy_yaml(t))
    assert doc["exclusive"] is True
    assert [s["where"] for s in doc["segments"]] == [c.rule for c in t.cells]
    assert parse_segments(
        {"exclusive": True, "segments": [{"name": "a", "where": "x >= 1"}]}, source="t"
    ).exclusive
    rollout = yaml.safe_load(rollout_yaml(t, "policy.yaml"))
    assert rollout["rollout"] == [
        {"segment": "vip", "arm": "treatment"},
        {"segment": "everyone_else", "arm": "control"},
    ]


def test_targeting_html_escapes_user_text_and_draws_the_curve() -> None:
    page = targeting_html(_targeting())
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "<polyline" in gain_svg(_targeting())
