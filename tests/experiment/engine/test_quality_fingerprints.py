"""The customers' scan finds segments with the same members, as sets of ids tell."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq

from experiment.config import load_experiment
from experiment.engine.dataset import open_dataset
from experiment.engine.quality import table_checks
from segments import load_segments
from segments.compile import compile_segments
from segments.membership import membership
from tests.fixtures.dataset import START

# Overlapping segments: two exact twins, a near twin (days 0 excluded), two empty
# ones (never reported), and ``orders_90d`` nulls (no member).
SEGMENTS = """\
segments:
  - {name: buyers, where: "orders_90d >= 1"}
  - {name: mobile, where: "device == 'mobile'"}
  - {name: buyers_again, where: "orders_90d >= 1 and days_since_last_login >= 0"}
  - {name: mobile_recent, where: "device == 'mobile' and days_since_last_login >= 1"}
  - {name: phones, where: "device in ['mobile'] and orders_90d >= 0 or device == 'mobile'"}
  - {name: lapsed, where: "days_since_last_login >= 14"}
  - {name: lapsed_buyers, where: "days_since_last_login >= 14 and orders_90d >= 1"}
  - {name: nobody, where: "orders_90d >= 1000"}
  - {name: nobody_either, where: "days_since_last_login > 1000"}
"""


def _expected(folder) -> dict[str, str]:
    """Each segment whose member ids equal an earlier non-empty segment's, to that one."""
    segment_set = load_segments(folder / "segments.yaml")
    customers = pq.read_table(folder / "customers.parquet")
    ids = customers.column("user_id").to_pylist()
    members = membership(customers, segment_set, as_of=START)
    seen: dict[frozenset[str], str] = {}
    out = {}
    for name, flags in members.items():
        key = frozenset(i for i, f in zip(ids, flags, strict=True) if f)
        if key and key in seen:
            out[name] = seen[key]
        elif key:
            seen[key] = name
    return out


def test_twin_segments_are_those_with_the_same_member_ids(tmp_path, dataset_dir):
    folder = shutil.copytree(dataset_dir, tmp_path / "data")
    (folder / "segments.yaml").write_text(SEGMENTS)
    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(folder / "segments.yaml")
    dataset = open_dataset(folder)
    masks = compile_segments(segment_set, dataset.customers, as_of=START)
    checked = table_checks(dataset, config, START, START, (segment_set, masks))
    found = {}
    for text in checked.segment_warnings:
        if "has exactly the members of" in text:
            twin, first = text.split("segment ", 1)[1].split(" has exactly the members of ")
            found[twin.strip("'")] = first.split(" ", 1)[0].strip("'")
    expected = _expected(folder)
    assert expected == {"buyers_again": "buyers", "phones": "mobile"}  # the data is as meant
    assert found == expected
