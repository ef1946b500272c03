import json
import math
from dataclasses import fields, replace

import pytest

from experiment.errors import DataError
from experiment.results import AnalysisResults, ResultRow, load_results
from tests.fixtures.results import make_results

# The results contract of DESIGN.md: these names are read by other tools.
CONTRACT_ROW = [
    "segment", "metric", "arm", "n_control", "n_treatment", "mean_control", "mean_treatment",
    "lift_abs", "lift_rel", "ci_low", "ci_high", "ci_abs_low", "ci_abs_high", "p_value",
    "p_adjusted", "significant", "method",
]  # fmt: skip


def test_result_row_has_every_contract_field():
    names = [f.name for f in fields(ResultRow)]
    assert names[: len(CONTRACT_ROW)] == CONTRACT_ROW


def test_to_json_is_strict_json_with_contract_top_level():
    doc = json.loads(make_results().to_json())
    assert {"experiment", "control", "srm", "results"} <= set(doc)
    assert set(doc["srm"]) >= {"p_value", "observed", "expected", "flag"}
    assert set(CONTRACT_ROW) <= set(doc["results"][0])
    assert doc["results"][1]["p_value"] is None  # NaN is not JSON
    assert doc["results"][1]["ci_low"] is None


def test_json_round_trip_preserves_everything():
    original = make_results()
    back = AnalysisResults.from_json_dict(json.loads(original.to_json()))
    assert back.results[0] == original.results[0]
    assert math.isnan(back.results[1].p_value)
    assert back.srm == original.srm
    assert back.segments == original.segments


def test_to_pandas_and_repr_html():
    frame = make_results().to_pandas()
    assert list(frame.columns)[: len(CONTRACT_ROW)] == CONTRACT_ROW
    assert len(frame) == 2
    assert "<table" in make_results()._repr_html_()


def test_load_results_errors(tmp_path):
    with pytest.raises(DataError, match="results file not found"):
        load_results(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON at line 1"):
        load_results(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(DataError, match="not a seglift results file"):
        load_results(tmp_path / "other.json")


def test_json_round_trip_of_segment_srm_and_data_quality():
    from experiment.results import DataQuality, DataQualityCheck, SegmentSrm

    base = make_results()
    srm = replace(
        base.srm,
        segments=(
            SegmentSrm(
                segment="vip", p_value=1e-5, observed={"control": 90, "treatment": 10}, flag=True
            ),
        ),
    )
    dq = DataQuality(
        checks=(
            DataQualityCheck(
                name="multiple_arms",
                count=3,
                action="excluded",
                message="3 users ...",
                severity="warning",
            ),
        )
    )
    original = replace(base, srm=srm, data_quality=dq)
    doc = json.loads(original.to_json())
    seg = doc["srm"]["segments"][0]
    assert seg == {"segment": "vip", "p_value": 1e-5, "observed": seg["observed"], "flag": True}
    assert seg["observed"] == {"control": 90, "treatment": 10}
    assert set(doc["data_quality"]["checks"][0]) == {
        "name",
        "count",
        "action",
        "message",
        "severity",
    }
    back = AnalysisResults.from_json_dict(doc)
    assert back.srm == srm
    assert back.data_quality == dq
    old = {k: v for k, v in doc.items() if k != "data_quality"}
    assert AnalysisResults.from_json_dict(old).data_quality == DataQuality()


def test_json_higher_is_better_round_trips_and_defaults_to_true_for_older_files():
    original = make_results()
    lower = replace(original, results=(replace(original.results[0], higher_is_better=False),))
    doc = json.loads(lower.to_json())
    assert doc["results"][0]["higher_is_better"] is False
    assert AnalysisResults.from_json_dict(doc).results[0].higher_is_better is False
    del doc["results"][0]["higher_is_better"]  # a file written before the field existed
    assert AnalysisResults.from_json_dict(doc).results[0].higher_is_better is True


def test_cuped_adjusted_means_round_trip_and_default_to_null():
    original = make_results()
    cuped_row = replace(
        original.results[0],
        method="cuped(revenue_90d) welch-t, delta-method relative CI, holm",
        mean_control_adj=0.0318,
        mean_treatment_adj=0.0341,
        cuped_variance_reduction=0.2,
    )
    results = replace(original, results=(cuped_row, original.results[1]))
    doc = json.loads(results.to_json())
    assert doc["results"][0]["mean_control_adj"] == 0.0318
    assert doc["results"][0]["mean_treatment_adj"] == 0.0341
    assert doc["results"][1]["mean_control_adj"] is None  # not CUPED: null
    back = AnalysisResults.from_json_dict(doc)
    assert back.results[0] == cuped_row
    assert math.isnan(back.results[1].mean_treatment_adj)


def test_results_without_adjusted_means_still_load():
    """A results.json written before the fields existed loads with NaN adjusted means."""
    doc = json.loads(make_results().to_json())
    for row in doc["results"]:
        del row["mean_control_adj"], row["mean_treatment_adj"]
    back = AnalysisResults.from_json_dict(doc)
    assert math.isnan(back.results[0].mean_control_adj)
    assert back.results[0].mean_control == pytest.approx(0.0312)
