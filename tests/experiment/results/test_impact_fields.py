"""The impact and time-to-decision fields round-trip through results.json and sums.parquet."""

import datetime as dt
import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from experiment.results import AnalysisResults
from experiment.results.sums import cells_from_table, sums_table
from experiment.sums import CellSums, MeanSums
from tests.fixtures.results import make_results

FIELDS: dict[str, Any] = {
    "impact_users": 100000.0, "users_per_day": 7142.857142857143, "impact_window": 230.0,
    "impact_window_low": 30.0, "impact_window_high": 430.0, "impact_30d": 492.85714285714283,
    "impact_30d_low": 64.28571428571429, "impact_30d_high": 921.4285714285714,
    "extra_users_needed": 18000.0, "extra_days_needed": 2.52,
}  # fmt: skip


def test_impact_fields_and_target_lift_round_trip_exactly():
    original = make_results()
    results = replace(
        original,
        results=(replace(original.results[0], **FIELDS), original.results[1]),
        target_lift=0.1,
    )
    doc = json.loads(results.to_json())
    assert doc["target_lift"] == 0.1
    assert {k: doc["results"][0][k] for k in FIELDS} == FIELDS
    assert all(doc["results"][1][k] is None for k in FIELDS)  # never set: null
    back = AnalysisResults.from_json_dict(doc)
    assert back.results[0] == results.results[0]
    assert back.target_lift == 0.1


def test_older_results_without_impact_fields_load_with_them_null():
    doc = json.loads(make_results().to_json())
    del doc["target_lift"]
    for row in doc["results"]:
        for k in FIELDS:
            del row[k]
    back = AnalysisResults.from_json_dict(doc)
    assert math.isnan(back.target_lift)
    assert all(math.isnan(getattr(r, k)) for r in back.results for k in FIELDS)
    assert back.results[0].lift_abs == pytest.approx(0.0023)


def _cells(span: float) -> CellSums:
    t0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    return CellSums(
        segments=("all",),
        arms=("control", "treatment"),
        units=np.array([[10.0, 12.0]]),
        metrics={
            "m": MeanSums(
                n=np.array([[10.0, 12.0]]), mean=np.array([[1.0, 2.0]]), m2=np.array([[3.0, 4.0]])
            )
        },
        window_start=t0,
        window_end=t0 + dt.timedelta(days=14),
        assignment_days=span,
    )


@pytest.mark.parametrize("span", [3.25, 0.0])
def test_sums_table_keeps_the_assignment_span(span):
    assert cells_from_table(sums_table(_cells(span))).assignment_days == span


def test_sums_table_without_the_span_reads_it_as_unknown():
    table = sums_table(_cells(3.25))
    meta = json.loads(table.schema.metadata[b"seglift.sums"])
    del meta["assignment_days"]  # a file written before the field existed
    older = table.replace_schema_metadata({b"seglift.sums": json.dumps(meta).encode()})
    assert math.isnan(cells_from_table(older).assignment_days)
