"""The results comparison script finds every difference and only differences."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.fixtures.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def compare():
    return load_benchmark("compare_results")


DOC: dict[str, Any] = {
    "experiment": "x",
    "results": [{"p_value": 0.0123456789, "significant": True, "n_control": 10, "ci": None}],
}


def test_compare_equal_documents(compare):
    assert compare.differences(DOC, json.loads(json.dumps(DOC)), rtol=1e-12) == []


def test_compare_number_within_and_beyond_tolerance(compare):
    near = {**DOC, "results": [{**DOC["results"][0], "p_value": 0.0123456789 * (1 + 1e-14)}]}
    far = {**DOC, "results": [{**DOC["results"][0], "p_value": 0.0123456789 * (1 + 1e-9)}]}
    assert compare.differences(DOC, near, rtol=1e-12) == []
    assert compare.differences(DOC, far, rtol=1e-12) == [
        f"$.results[0].p_value: 0.0123456789 != {0.0123456789 * (1 + 1e-9)!r}"
    ]


def test_compare_types_keys_and_lengths(compare):
    flipped = {**DOC, "results": [{**DOC["results"][0], "significant": 1}]}
    assert compare.differences(DOC, flipped, rtol=1e-12) == ["$.results[0].significant: True != 1"]
    assert compare.differences(DOC, {"experiment": "x"}, rtol=1e-12) == [
        "$.results: only in the first"
    ]
    assert compare.differences({"a": [1, 2]}, {"a": [1]}, rtol=1e-12) == ["$.a: 2 items != 1 items"]
    assert compare.differences({"a": None}, {"a": 0.0}, rtol=1e-12) == ["$.a: None != 0.0"]
    assert compare.differences({"a": math.nan}, {"a": math.nan}, rtol=1e-12) == []


def test_compare_cli_exit_codes(compare, tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(DOC))
    second.write_text(json.dumps(DOC))
    assert compare.main([str(first), str(second)]) == 0
    second.write_text(json.dumps({**DOC, "experiment": "y"}))
    assert compare.main([str(first), str(second)]) == 1
    assert "$.experiment: 'x' != 'y'" in capsys.readouterr().out
