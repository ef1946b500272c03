"""The main query finds segments with the same analysed users, as sets of ids tell."""

from __future__ import annotations

import shutil

import pyarrow.compute as pc
import pyarrow.parquet as pq

from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from segments import load_segments
from segments.membership import membership
from tests.fixtures.dataset import START

# Overlapping segments: two exact twins, a near twin (days 0 excluded), two empty
# ones (never reported), ``orders_90d`` nulls (no member), and a twin among the
# analysed users only (``buyers_active``: the customers it leaves out are not assigned).
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
  - {name: buyers_active, where: "orders_90d >= 1 and days_since_last_login < 50"}
"""


def _folder(tmp_path, dataset_dir):
    """The shared dataset, customers with ``days_since_last_login >= 50`` not assigned."""
    folder = shutil.copytree(dataset_dir, tmp_path / "data")
    (folder / "segments.yaml").write_text(SEGMENTS)
    customers = pq.read_table(folder / "customers.parquet")
    gone = customers.filter(pc.greater_equal(customers["days_since_last_login"], 50))
    asg = pq.read_table(folder / "assignments.parquet")
    keep = pc.invert(pc.is_in(asg["user_id"], value_set=gone["user_id"]))
    pq.write_table(asg.filter(keep), folder / "assignments.parquet")
    return folder


def _expected(folder, *, analysed: bool) -> dict[str, str]:
    """Each segment whose member ids equal an earlier non-empty segment's, to that one.

    Members among the experiment's assigned customers (every one has one arm and one
    customer row here: all analysed), or among every customer.
    """
    segment_set = load_segments(folder / "segments.yaml")
    customers = pq.read_table(folder / "customers.parquet")
    asg = pq.read_table(folder / "assignments.parquet").to_pandas()
    assigned = set(asg[asg.experiment == "exp1"].user_id)
    ids = customers.column("user_id").to_pylist()
    members = membership(customers, segment_set, as_of=START)
    seen: dict[frozenset[str], str] = {}
    out = {}
    for name, flags in members.items():
        key = frozenset(i for i, f in zip(ids, flags, strict=True) if f)
        key = key & assigned if analysed else key
        if key and key in seen:
            out[name] = seen[key]
        elif key:
            seen[key] = name
    return out


def test_twin_segments_are_those_with_the_same_analysed_user_ids(tmp_path, dataset_dir):
    folder = _folder(tmp_path, dataset_dir)
    config = load_experiment(folder / "experiment.yaml")
    cells = aggregate(open_dataset(folder), config, load_segments(folder / "segments.yaml"))
    found = {}
    for text in cells.quality.segment_warnings:
        if "has exactly the analysed users of" in text:
            twin, first = text.split("segment ", 1)[1].split(" has exactly the analysed users of ")
            found[twin.strip("'")] = first.split(" ", 1)[0].strip("'")
    expected = _expected(folder, analysed=True)
    # the data is as meant: one twin more than among every customer
    assert _expected(folder, analysed=False) == {"buyers_again": "buyers", "phones": "mobile"}
    assert expected == {"buyers_again": "buyers", "phones": "mobile", "buyers_active": "buyers"}
    assert found == expected
