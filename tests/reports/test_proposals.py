import json
from dataclasses import replace

import pytest
import yaml
from typer.testing import CliRunner

from experiment.cli import app
from experiment.results.refinement import NewSegment, load_refinement
from reports.proposals import models_path, proposals_yaml, write_proposals
from segments import load_models, load_segments
from tests.fixtures.dataset import EXPERIMENT_YAML, SEGMENTS_YAML, write_dataset
from tests.fixtures.refinement import (
    group_proposal,
    make_refinement,
    merge_proposal,
    split_proposal,
)

runner = CliRunner()
ORIGINAL = ["buyers", "mobile", "lapsed_desktop"]
SPLIT = ["buyers_days_since_last_login_lt_30", "buyers_days_since_last_login_ge_30"]


def _segments(tmp_path, text=SEGMENTS_YAML, name="segments.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_segments(path)


def _load(tmp_path, text):
    path = tmp_path / "proposals.yaml"
    path.write_text(text)
    return load_segments(path)


def test_proposals_yaml_keeps_originals_and_adds_significant_after_their_parent(tmp_path):
    original = _segments(tmp_path)
    text = proposals_yaml(make_refinement(), original)
    loaded = _load(tmp_path, text)
    assert loaded.names == ["buyers", *SPLIT, "mobile", "buyers_or_mobile", "lapsed_desktop"]
    before = {s.name: (s.where, s.description) for s in original.segments}
    after = {s.name: (s.where, s.description) for s in loaded.segments}
    assert all(after[n] == before[n] for n in ORIGINAL)
    assert after[SPLIT[0]] == (
        'segment("buyers") and days_since_last_login < 30',
        "Recent buyers.",
    )
    # the non-significant proposal is a comment only, with its evidence
    assert "lapsed_desktop_device_desktop" not in loaded.names
    assert "# considered, not proposed: split of 'lapsed_desktop' on device" in text
    assert "interaction p = 0.310, holm-adjusted 0.620" in text
    assert "equivalence (two one-sided tests) p = 0.004, holm-adjusted 0.010" in text


def test_proposals_yaml_comments_carry_the_evidence(tmp_path):
    text = proposals_yaml(make_refinement(split_proposal()), _segments(tmp_path))
    block = text[text.index("# PROPOSED: split of 'buyers'") : text.index(f'- name: "{SPLIT[0]}"')]
    assert "lift +18.0% [+9.0%, +27.0%], p = 0.004" in block
    assert "800 users, held out 200 control / 200 treatment" in block
    assert "follow-up MDE 21.0%" in block
    assert "interaction p = 0.002, holm-adjusted 0.020 (alpha 0.05)" in block
    assert "best of 240 candidates on the discovery half" in block
    header = text[: text.index("segments:")]
    assert all(line.startswith("#") for line in header.splitlines())
    prose = " ".join(line.removeprefix("# ") for line in header.splitlines())
    assert "discovery half (1,500 users)" in prose
    assert "estimation half (1,500 users), which the search never saw" in prose


def test_proposals_yaml_keeps_other_fields_of_the_file(tmp_path):
    original = _segments(tmp_path, "min_size: 7\nlifecycle: {new_days: 5}\n" + SEGMENTS_YAML)
    loaded = _load(tmp_path, proposals_yaml(make_refinement(), original))
    assert loaded.min_size == 7
    assert loaded.lifecycle == original.lifecycle
    assert not loaded.exclusive


def test_proposals_yaml_user_text_cannot_escape_its_comment(tmp_path):
    evil = "x\n  - name: injected\n    where: orders_90d >= 0\r\u2028# more"
    split = split_proposal()
    split = replace(
        split,
        summary=evil,
        attribute=evil,
        sides=(replace(split.sides[0], rule=evil, name=evil), split.sides[1]),
    )
    refinement = make_refinement(split, group_proposal())
    loaded = _load(tmp_path, proposals_yaml(refinement, _segments(tmp_path)))
    assert "injected" not in loaded.names
    assert loaded.names == ["buyers", *SPLIT, "mobile", "lapsed_desktop"]


def test_proposals_yaml_exclusive_file_puts_new_segments_before_their_parent(tmp_path):
    original = _segments(tmp_path, "exclusive: true\n" + SEGMENTS_YAML)
    on_all = replace(
        split_proposal(),
        segment="all",
        new_segments=(
            NewSegment(name="recent", where="days_since_last_login < 30", description=""),
        ),
    )
    refinement = make_refinement(split_proposal(), merge_proposal(), on_all)
    text = proposals_yaml(refinement, original)
    loaded = _load(tmp_path, text)
    assert loaded.exclusive
    assert loaded.names == [*SPLIT, "buyers_or_mobile", "buyers", "mobile", "lapsed_desktop"]
    assert "recent" not in loaded.names
    assert "significant but not added (an exclusive file has no place" in text


def test_proposals_yaml_exclusive_split_takes_exactly_its_parents_users(tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    from segments import membership

    data = write_dataset(tmp_path / "data", n_users=600, n_events=100)
    customers = pq.read_table(data / "customers.parquet")
    exclusive = """\
exclusive: true
segments:
  - {name: mobile, where: "device == 'mobile'"}
  - {name: buyers, where: "orders_90d >= 1"}
  - {name: lapsed_desktop, where: "days_since_last_login >= 14 and device == 'desktop'"}
"""
    original = _segments(tmp_path, exclusive)
    assert original.names == ["mobile", "buyers", "lapsed_desktop"]
    loaded = _load(tmp_path, proposals_yaml(make_refinement(split_proposal()), original))
    before, after = membership(customers, original), membership(customers, loaded)
    assert loaded.names == ["mobile", *SPLIT, "buyers", "lapsed_desktop"]
    recent = customers.column("days_since_last_login").to_numpy() < 30
    assert np.array_equal(after[SPLIT[0]], before["buyers"] & recent)
    assert np.array_equal(after[SPLIT[1]], before["buyers"] & ~recent)
    assert not after["buyers"].any()  # the split covers its parent: nothing left over
    for name in ("mobile", "lapsed_desktop", "rest"):
        assert np.array_equal(after[name], before[name]), name


@pytest.mark.parametrize(
    ("new", "phrase"),
    [
        (
            NewSegment(name="mobile", where="orders_90d >= 2", description=""),
            "a segment named 'mobile' already exists",
        ),
        (
            NewSegment(name="all", where="orders_90d >= 2", description=""),
            "'all' is not a valid segment name",
        ),
        (
            NewSegment(name="x", where="orders_90d >=", description=""),
            "the rule of 'x' does not parse",
        ),
        (
            NewSegment(name="x", where='segment("nope") and device == "a"', description=""),
            "its rule refers to 'nope'",
        ),
    ],
)
def test_proposals_yaml_invalid_new_segment_stays_a_comment(tmp_path, new, phrase):
    bad = replace(split_proposal(), new_segments=(new,))
    text = proposals_yaml(make_refinement(bad), _segments(tmp_path))
    assert _load(tmp_path, text).names == ORIGINAL
    assert f"# significant but not added ({phrase}" in text


def test_proposals_yaml_without_segments_file_lists_only_new_segments(tmp_path):
    on_all = replace(
        split_proposal(),
        segment="all",
        new_segments=(
            NewSegment(name="recent", where="days_since_last_login < 30", description=""),
        ),
    )
    loaded = _load(tmp_path, proposals_yaml(make_refinement(on_all), None))
    assert loaded.names == ["recent"]
    text = proposals_yaml(make_refinement(replace(on_all, significant=False)), None)
    assert yaml.safe_load(text) == {"segments": []}
    assert "# No segments: the experiment has no segments file" in text


def test_write_proposals_writes_evidence_json_beside_it(tmp_path):
    refinement = make_refinement()
    files = write_proposals(refinement, _segments(tmp_path), tmp_path / "out" / "p.yaml")
    assert files.segments == tmp_path / "out" / "p.yaml"
    assert files.evidence == tmp_path / "out" / "p.json"
    assert files.models is None
    assert load_refinement(files.evidence) == refinement
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p.json", "p.yaml"]


def test_write_proposals_copies_the_fitted_models(tmp_path):
    data = write_dataset(tmp_path / "data", n_users=400, n_events=2000)
    text = SEGMENTS_YAML + (
        "  - name: habits\n    cluster: {features: [days_since_last_login, orders_90d], k: 2}\n"
    )
    (data / "segments.yaml").write_text(text)
    fitted = runner.invoke(app, ["segments", "fit", str(data / "segments.yaml"), "-d", str(data)])
    assert fitted.exit_code == 0, fitted.output
    original = load_segments(data / "segments.yaml")
    files = write_proposals(make_refinement(), original, data / "proposals.yaml")
    assert files.models == models_path(data / "proposals.yaml") == data / "proposals.models.json"
    proposed = load_segments(files.segments)
    assert load_models(proposed) == load_models(original) != {}
    assert json.loads(files.models.read_text())["segments_file"] == "proposals.yaml"


def test_proposals_file_works_in_segments_validate_and_analyze(tmp_path):
    data = write_dataset(tmp_path / "data", n_users=1500, n_events=12_000)
    write_proposals(make_refinement(), load_segments(data / "segments.yaml"), data / "p.yaml")
    (data / "refined.yaml").write_text(EXPERIMENT_YAML.replace("segments.yaml", "p.yaml"))

    checked = runner.invoke(app, ["segments", "validate", str(data / "p.yaml"), "-d", str(data)])
    assert checked.exit_code in (0, 1), checked.output  # 1: a segment fails a size check
    report = json.loads(
        runner.invoke(
            app, ["segments", "validate", str(data / "p.yaml"), "-d", str(data), "--json"]
        ).stdout
    )
    sizes = {s["name"]: s["size"] for s in report["segments"]}
    assert sizes[SPLIT[0]] + sizes[SPLIT[1]] == sizes["buyers"]

    out = tmp_path / "out"
    args = ["analyze", str(data), "-e", str(data / "refined.yaml"), "--out", str(out)]
    analysed = runner.invoke(app, [*args, "--no-html"])
    assert analysed.exit_code == 0, analysed.output
    doc = json.loads((out / "results.json").read_text())
    segments = {r["segment"] for r in doc["results"]}
    assert segments == {"all", *ORIGINAL, *SPLIT, "buyers_or_mobile"}


def test_proposals_yaml_is_plain_yaml_with_comments_only_above_entries(tmp_path):
    text = proposals_yaml(make_refinement(), _segments(tmp_path))
    doc = yaml.safe_load(text)
    assert set(doc) == {"segments"}
    assert all(line.startswith(("#", "segments:", "  ")) for line in text.splitlines())


# Attribute values a customer table can hold that a plain YAML scalar would change.
HOSTILE_VALUES = [
    'it\'s "quoted"',
    "two\nlines",
    "tab\there",
    "# not a comment",
    "key: value",
    "- not a list",
    "yes",
    "null",
    "~",
    "No",
    " leading and trailing ",
    "2026-01-05",
    "0x10",
    "\u00e9t\u00e9 \u2028 sep",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_proposals_yaml_string_values_round_trip_exactly(tmp_path, value):
    from segments.refine.propose import literal

    split = split_proposal()
    where = f'segment("buyers") and device == {literal(value)}'
    new = (
        replace(split.new_segments[0], where=where, description=value),
        split.new_segments[1],
    )
    text = proposals_yaml(make_refinement(replace(split, new_segments=new)), _segments(tmp_path))
    parsed = yaml.safe_load(text)  # an independent reader: PyYAML itself
    entry = next(e for e in parsed["segments"] if e["name"] == SPLIT[0])
    assert entry == {"name": SPLIT[0], "description": value, "where": where}
    loaded = _load(tmp_path, text).segments
    rule = next(s for s in loaded if s.name == SPLIT[0]).rule
    assert rule.operands[1].right.value == value


def test_proposals_yaml_quotes_every_string_value(tmp_path):
    text = proposals_yaml(make_refinement(split_proposal()), _segments(tmp_path))
    entries = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    values = [line.split(": ", 1)[1] for line in entries if ": " in line and "name" in line]
    assert values
    assert all(v.startswith('"') and v.endswith('"') for v in values)
