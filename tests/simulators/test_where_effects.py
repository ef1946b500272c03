"""Planted effects restricted by a ``where:`` rule, and the split and uniform scenarios."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from experiment.errors import ConfigError, RuleError
from segments import SegmentSet, membership, parse_segments
from segments.rules import Column, Compare, Const, parse_rule
from simulators import load_scenario, simulate
from simulators.catalog import BUILTIN_DIR
from simulators.effects import build_multipliers
from simulators.masks import customer_masks
from simulators.scenario import EffectSpec

AS_OF = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def _copy(tmp_path: Path, name: str = "split") -> Path:
    folder = tmp_path / name
    shutil.copytree(BUILTIN_DIR / name, folder)
    return folder


def _with_effect(tmp_path: Path, effect: str) -> Path:
    folder = _copy(tmp_path)
    path = folder / "scenario.yaml"
    text = path.read_text()
    old = '{segment: engaged, where: "price_sensitivity >= 0.5", purchase: 1.0}'
    assert old in text
    path.write_text(text.replace(old, effect))
    return folder


def _customers() -> pa.Table:
    return pa.table(
        {
            "user_id": ["a", "b", "c", "d", "e"],
            "price_sensitivity": [0.1, 0.5, 0.9, None, 0.7],
            "sessions_30d": [9, 9, 9, 9, 2],
            "country": ["US", "DE", "US", "US", "US"],
        }
    )


def _segment_set(extra: str | None = None) -> SegmentSet:
    segments = [{"name": "engaged", "where": "sessions_30d >= 8"}]
    if extra is not None:
        segments.append({"name": "check", "where": extra})
    return parse_segments({"segments": segments}, source="segments.yaml")


def test_where_masks_match_segment_membership_of_the_same_rule():
    rule = 'segment("engaged") and price_sensitivity >= 0.5 and country in ["US"]'
    effects = [
        EffectSpec(segment="all", purchase=0.2),
        EffectSpec(segment="engaged", where=rule, purchase=0.5),
    ]
    table = _customers()
    masks = customer_masks(table, _segment_set(), effects, as_of=AS_OF).where
    expected = membership(table, _segment_set(rule), as_of=AS_OF)["check"]
    assert masks[0] is None
    assert masks[1] is not None
    np.testing.assert_array_equal(masks[1], expected)
    np.testing.assert_array_equal(masks[1], [False, False, True, False, False])  # null: no match


def test_where_masks_without_rules_evaluate_nothing():
    effects = [EffectSpec(segment="engaged", purchase=0.5)]
    assert customer_masks(_customers(), _segment_set(), effects, as_of=AS_OF).where == (None,)


def test_build_multipliers_applies_a_where_effect_only_inside_segment_and_rule():
    effects = [EffectSpec(segment="engaged", where="price_sensitivity >= 0.5", purchase=0.5)]
    members = {"engaged": np.array([True, True, False, False])}
    where = [np.array([False, True, True, False])]
    mult = build_multipliers(
        effects, members, arms=["control", "treatment"], control="control", n_users=4, where=where
    )
    np.testing.assert_array_equal(mult.purchase, [[1, 1, 1, 1], [1, 1.5, 1, 1]])
    np.testing.assert_array_equal(mult.ctr, np.ones((2, 4)))


def test_build_multipliers_rejects_a_where_effect_without_its_mask():
    effects = [EffectSpec(segment="engaged", where="price_sensitivity >= 0.5", purchase=0.5)]
    members = {"engaged": np.ones(3, dtype=np.bool_)}
    with pytest.raises(ValueError, match="no mask"):
        build_multipliers(effects, members, arms=["control", "t"], control="control", n_users=3)


@pytest.mark.parametrize(
    ("rule", "error", "message"),
    [
        ("price_sensitivity >=", RuleError, "not a valid rule"),
        ("price_sensitivty >= 0.5", RuleError, "did you mean 'price_sensitivity'"),
        ('segment("engagd") and price_sensitivity >= 0.5', RuleError, "did you mean 'engaged'"),
        ("country >= 0.5", RuleError, "'country' is a string but is compared with number"),
        ("__import__('os')", RuleError, "function calls are not allowed"),
        ("", ConfigError, "at least 1 character"),
    ],
)
def test_load_scenario_rejects_a_bad_where_rule_in_one_line(
    tmp_path: Path, rule: str, error: type[Exception], message: str
):
    folder = _with_effect(
        tmp_path, f"{{segment: engaged, where: {json.dumps(rule)}, purchase: 0.6}}"
    )
    with pytest.raises(error, match=r"scenario\.yaml: field 'effects(\.0|\[0\])\.where'") as info:
        load_scenario(folder)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_where_effect_truth_is_zero_outside_the_rule_and_positive_inside(tmp_path: Path):
    folder = _copy(tmp_path)
    with (folder / "segments.yaml").open("a") as f:
        f.write(
            "  - name: engaged_sensitive\n"
            "    where: 'segment(\"engaged\") and price_sensitivity >= 0.5'\n"
            "  - name: engaged_other\n"
            "    where: 'segment(\"engaged\") and price_sensitivity < 0.5'\n"
        )
    simulate(folder, users=6000, days=7, seed=3, out=tmp_path / "d")
    truth = json.loads((tmp_path / "d" / "truth.json").read_text())
    rows = {(r["segment"], r["metric"]): r for r in truth["effects"]}
    for segment in ("engaged_other", "casual", "lapsing", "dormant"):
        for metric in ("conversion", "revenue_per_user", "ctr"):
            assert rows[segment, metric]["lift_abs"] == 0.0, (segment, metric)
    inside = rows["engaged_sensitive", "conversion"]
    assert inside["lift_rel"] > 0.2
    assert 0 < rows["engaged", "conversion"]["lift_rel"] < inside["lift_rel"]


def test_split_scenario_plants_one_threshold_on_one_continuous_attribute():
    scenario = load_scenario("split")
    (effect,) = scenario.config.effects
    assert effect.where is not None
    node = parse_rule(effect.where)
    assert isinstance(node, Compare)
    assert isinstance(node.left, Column)
    assert isinstance(node.right, Const)
    assert (node.left.name, node.op, node.right.value) == ("price_sensitivity", ">=", 0.5)
    assert effect.segment in scenario.segment_set.names
    assert effect.purchase >= 0.4
    assert len(scenario.segment_set.names) >= 4
    assert scenario.experiment.metrics[0].name == "conversion"


def test_uniform_scenario_has_one_effect_for_everyone():
    scenario = load_scenario("uniform")
    (effect,) = scenario.config.effects
    assert effect.segment == "all"
    assert effect.where is None
    assert effect.purchase > 0
    assert len(scenario.segment_set.names) >= 4
    assert scenario.experiment.metrics[0].name == "conversion"
