"""Every analysed segment described as defined: the words are checked against membership."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from segments.definitions import load_segments, parse_segments
from segments.describe import EVERYONE, describe_segments
from segments.lifecycle import STAGES, LifecycleConfig, stage_rule
from segments.membership import membership
from segments.models import load_models

AS_OF = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _customers(n: int = 3000, rng: int = 4) -> pa.Table:
    gen = np.random.default_rng(rng)
    group = gen.choice(3, n, p=[0.5, 0.3, 0.2])
    return pa.table(
        {
            "user_id": [f"u{i:05d}" for i in range(n)],
            "signup_at": [AS_OF - dt.timedelta(days=int(d)) for d in gen.integers(1, 900, n)],
            "days_since_last_login": gen.integers(0, 120, n),
            "revenue_90d": np.exp(gen.normal(0, 0.3, n) + np.array([1.0, 4.0, 7.0])[group]),
            "visits": gen.poisson(np.array([2, 8, 20])[group]),
            "device": gen.choice(["mobile", "desktop", "smart_tv"], n),
            "channel": gen.choice(["paid_search", "paid_social", "organic"], n),
            "lapsed": (gen.random(n) < 0.3).astype(np.int64),
        }
    )


def _entries() -> dict[str, object]:
    return {
        "min_size": 20,
        "segments": [
            {"name": "big", "where": "revenue_90d >= 100", "description": "Big <spenders>."},
            {"cross": ["lifecycle"], "description": "Per stage."},
            {"name": "stage_device", "cross": ["lifecycle", "device"]},
            {"name": "chan_dev", "cross": ["channel", "device"], "description": "Both."},
            {"name": "taste", "cluster": {"features": ["revenue_90d", "visits"], "k": 3}},
            {
                "name": "churn",
                "predict": {
                    "target": "lapsed == 1",
                    "features": ["visits", "revenue_90d"],
                    "bands": {"top_decile": [0.9, 1.0], "low_half": [0.0, 0.5]},
                },
                "description": "Likely to lapse.",
            },
        ],
    }


def _load(tmp_path, doc):
    path = tmp_path / "segments.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_segments(path)


def _rule_part(definition: str) -> str:
    """The rule a crossed definition starts with (the stage rules follow in brackets)."""
    return re.sub(r" \(.*\)$", "", definition)


def test_describe_crossed_segments_as_rules_that_select_their_members(tmp_path):
    table = _customers()
    segments = _load(tmp_path, _entries())
    masks = membership(table, segments, as_of=AS_OF)
    words = describe_segments(segments, ["all", *masks])
    crossed = [n for n in masks if n.startswith(("lifecycle_", "stage_device_", "chan_dev_"))]
    assert len(crossed) > 20  # underscores in values: paid_search, smart_tv, at_risk
    # Each crossed definition, read back as a rule, has exactly the segment's members.
    as_rules = parse_segments(
        {"segments": [{"name": f"r{i}", "where": _rule_part(words[n].definition)}
                      for i, n in enumerate(crossed)]},
        source="rules.yaml",
    )  # fmt: skip
    again = membership(table, as_rules, as_of=AS_OF)
    for i, name in enumerate(crossed):
        np.testing.assert_array_equal(again[f"r{i}"], masks[name], err_msg=name)
    # The user's own description is kept; lifecycle stages come with their rule.
    assert words["lifecycle_at_risk"].description == "Per stage."
    assert words["chan_dev_paid_search_smart_tv"].description == "Both."
    at_risk = stage_rule("at_risk", LifecycleConfig())
    assert words["stage_device_at_risk_mobile"].definition.endswith(f"(at_risk: {at_risk})")
    assert words["big"].definition == "revenue_90d >= 100"
    assert words["big"].description == "Big <spenders>."
    assert words["all"] == EVERYONE


def test_describe_clusters_by_the_features_that_set_their_members_apart(tmp_path):
    table = _customers()
    segments = _load(tmp_path, _entries())
    masks = membership(table, segments, as_of=AS_OF)  # fits and saves the models
    words = describe_segments(segments, ["all", *masks])
    clusters = [n for n in masks if n.startswith("taste_")]
    assert len(clusters) == 3
    data = {c: table[c].to_numpy() for c in ("revenue_90d", "visits")}
    for name in clusters:
        text = words[name].definition
        found = re.search(r": (high|low) (\w+) \(centre ≈ ([\d.e+-]+)", text)
        assert found is not None, text
        side, feature, centre = found.group(1), found.group(2), float(found.group(3))
        members = data[feature][masks[name]]
        assert (members.mean() > data[feature].mean()) == (side == "high"), text
        assert members.min() <= centre <= members.max(), text  # a typical member's value


def test_describe_score_bands_with_target_quantiles_and_auc(tmp_path):
    segments = _load(tmp_path, _entries())
    masks = membership(_customers(), segments, as_of=AS_OF)
    words = describe_segments(segments, ["all", *masks])
    model = dict(load_models(segments))["churn"][1]
    top = words["churn_top_decile"]
    assert top.description == "Likely to lapse."
    assert "lapsed == 1" in top.definition
    assert "90%" in top.definition
    assert "100%" in top.definition
    assert f"AUC {model.auc:.2f}" in top.definition  # type: ignore[union-attr]
    assert "0%" in words["churn_low_half"].definition
    assert "50%" in words["churn_low_half"].definition


def test_describe_rest_and_first_match_in_exclusive_sets(tmp_path):
    doc = {
        "exclusive": True,
        "segments": [
            {"name": "big", "where": "revenue_90d >= 100"},
            {"name": "busy", "where": "visits >= 10", "description": "Busy."},
        ],
    }
    segments = _load(tmp_path, doc)
    masks = membership(_customers(), segments, as_of=AS_OF)
    words = describe_segments(segments, ["all", *masks])
    assert list(masks) == ["big", "busy", "rest"]
    assert words["big"].definition == "revenue_90d >= 100"  # the first has nothing before it
    assert words["busy"].definition.startswith("visits >= 10; ")
    assert "no earlier segment" in words["busy"].definition
    assert words["busy"].description == "Busy."
    assert "big" in words["rest"].definition
    assert "busy" in words["rest"].definition


def test_describe_models_missing_from_the_models_file_say_so(tmp_path):
    segments = _load(tmp_path, _entries())
    masks = membership(_customers(), segments, as_of=AS_OF)
    segments.sidecar.unlink()
    words = describe_segments(segments, ["all", *masks])
    assert (
        "not in the models file"
        in words[next(n for n in masks if n.startswith("taste_"))].definition
    )


def test_stage_rule_follows_the_lifecycle_settings():
    config = LifecycleConfig(at_risk_days=21, dormant_days=45, recency_column="idle_days")
    assert "idle_days >= 21" in stage_rule("at_risk", config)
    assert "idle_days > 45" in stage_rule("dormant", config)
    for stage in STAGES[1:]:  # first match wins: each stage excludes the earlier ones
        assert "new" in stage_rule(stage, config)


def test_describe_keeps_names_from_sums_in_their_order(tmp_path):
    table = _customers()
    folder = tmp_path / "d"
    folder.mkdir()
    pq.write_table(table, folder / "customers.parquet")
    segments = _load(folder, _entries())
    names = ["all", *membership(table, segments, as_of=AS_OF)]
    assert list(describe_segments(segments, names)) == names
