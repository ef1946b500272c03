"""Multiple-testing families (``correction_scope``), checked against statsmodels' multipletests.

Pure analysis on seeded per-user arrays: the adjusted p-values of each family must
equal statsmodels' Holm / Benjamini-Hochberg run on exactly the raw p-values we
expect in that family, and nothing else.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import yaml
from statsmodels.stats.multitest import multipletests

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.results import AnalysisResults, ResultRow
from experiment.stats import adjust_pvalues
from segments import parse_segments
from tests.fixtures.sums import Values, cell_sums

ARMS3 = ("control", "a", "b")
METRICS = [
    {"name": "conversion", "kind": "proportion", "event": "purchase"},
    {"name": "revenue", "kind": "mean", "event": "purchase", "value": "revenue"},
]
_SM = {"holm": "holm", "bh": "fdr_bh"}


def _config(arms: tuple[str, ...] = ARMS3, **extra: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"name": "fam", "arms": dict.fromkeys(arms, 1.0), "metrics": METRICS, **extra}
    )


def _users(n: int = 6000, arms: tuple[str, ...] = ARMS3, seed: int = 0) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(seed)
    arm = gen.choice(list(arms), n)
    bought = gen.random(n) < np.where(arm == "control", 0.10, 0.12)
    return {
        "arm": arm,
        "bucket": gen.integers(0, 29, n),
        "conversion": bought.astype(float),
        "revenue": np.where(bought, gen.lognormal(3.0, 0.8, n), 0.0),
    }


def _cells(u: dict[str, np.ndarray], segments: int, arms: tuple[str, ...] = ARMS3):
    """``all`` plus ``segments`` exclusive segments cut from the same users."""
    part = u["bucket"] % segments
    members = {"all": np.ones(part.size, bool)} | {f"s{k}": part == k for k in range(segments)}
    metrics: dict[str, Values] = {"conversion": u["conversion"], "revenue": u["revenue"]}
    return cell_sums(metrics, arm=u["arm"], members=members, arms=arms)


def _sm(p: list[float], method: str = "holm") -> np.ndarray:
    adjusted: np.ndarray = multipletests(np.asarray(p), alpha=0.05, method=_SM[method])[1]
    return adjusted


def _check_family(rows: list[ResultRow], method: str = "holm") -> None:
    """The family's adjusted p-values are statsmodels' on its raw p-values."""
    expected = _sm([r.p_value for r in rows], method)
    np.testing.assert_allclose([r.p_adjusted for r in rows], expected, rtol=1e-12)
    assert {r.family_size for r in rows} == {len(rows)}


def _by_family(results: AnalysisResults) -> dict[str, list[ResultRow]]:
    out: dict[str, list[ResultRow]] = {}
    for row in results.results:
        out.setdefault(row.family, []).append(row)
    return out


def test_default_scope_all_row_does_not_depend_on_segment_count():
    u, config = _users(), _config()
    few = analyze_cells(_cells(u, 3), config, None)
    many = analyze_cells(_cells(u, 29), config, None)
    head_few = [r for r in few.results if r.segment == "all"]
    head_many = [r for r in many.results if r.segment == "all"]
    assert len(head_few) == len(head_many) == 4  # 2 metrics x 2 treatment arms
    assert [r.p_value for r in head_few] == [r.p_value for r in head_many]
    assert [r.p_adjusted for r in head_few] == [r.p_adjusted for r in head_many]
    assert {(r.family, r.family_size) for r in head_many} == {("primary", 4)}
    _check_family(head_many)
    # The old scope does depend on it: that is what the default removes.
    old_few = analyze_cells(_cells(u, 3), _config(correction_scope="per_metric"), None)
    old_many = analyze_cells(_cells(u, 29), _config(correction_scope="per_metric"), None)
    p_few = [r.p_adjusted for r in old_few.results if r.segment == "all"]
    p_many = [r.p_adjusted for r in old_many.results if r.segment == "all"]
    assert all(m > f for f, m in zip(p_few, p_many, strict=True) if f < 1)


@pytest.mark.parametrize("method", ["holm", "bh"])
@pytest.mark.parametrize(
    ("scope", "sizes"),
    [
        (
            "primary_and_segments",
            {
                "primary": 4,
                "segments:conversion:a": 4,
                "segments:conversion:b": 4,
                "segments:revenue:a": 4,
                "segments:revenue:b": 4,
            },
        ),
        ("per_metric", {"metric:conversion": 10, "metric:revenue": 10}),
        ("experiment", {"experiment": 20}),
    ],
)
def test_family_names_sizes_and_adjusted_p_per_scope(scope, sizes, method):
    config = _config(correction_scope=scope, correction=method)
    results = analyze_cells(_cells(_users(), 4), config, None)
    families = _by_family(results)
    assert {name: len(rows) for name, rows in families.items()} == sizes
    for rows in families.values():
        _check_family(rows, method)
    assert results.correction_scope == scope


def test_two_arms_one_metric_default_families():
    arms = ("control", "treatment")
    config = _config(arms=arms, metrics=METRICS[:1])
    results = analyze_cells(_cells(_users(arms=arms), 5, arms=arms), config, None)
    sizes = {name: len(rows) for name, rows in _by_family(results).items()}
    assert sizes == {"primary": 1, "segments:conversion:treatment": 5}
    (head,) = [r for r in results.results if r.segment == "all"]
    assert head.p_adjusted == head.p_value  # a family of one


def test_per_metric_reproduces_the_previous_correction_exactly():
    results = analyze_cells(_cells(_users(), 29), _config(correction_scope="per_metric"), None)
    p_raw = np.array([r.p_value for r in results.results])
    metric = np.array([r.metric for r in results.results])
    # The call seglift made before correction_scope existed.
    before = adjust_pvalues(p_raw, method="holm", groups=metric)
    assert np.array_equal([r.p_adjusted for r in results.results], before)
    for name in ("conversion", "revenue"):
        rows = [r for r in results.results if r.metric == name]
        _check_family(rows)


SEGMENTS = """\
exclusive: true
min_size: {floor}
segments:
  - {{name: s0, where: "x == 0"}}
  - {{name: s1, where: "x == 1"}}
  - {{name: s2, where: "x == 2"}}
  - {{name: s3, where: "x == 3"}}
"""


def _with_tiny_segment(suppressed: str) -> AnalysisResults:
    """Four segments, ``s3`` under the privacy floor."""
    u = _users(arms=("control", "treatment"))
    part = np.minimum(u["bucket"] % 4, 3)
    part[(part == 3) & (np.arange(part.size) % 40 != 0)] = 0  # s3: a few dozen users
    members = {"all": np.ones(part.size, bool)} | {f"s{k}": part == k for k in range(4)}
    metrics: dict[str, Values] = {"conversion": u["conversion"]}
    cells = cell_sums(metrics, arm=u["arm"], members=members)
    assert cells.units[4].sum() < 100
    segment_set = parse_segments(yaml.safe_load(SEGMENTS.format(floor=100)), source="s.yaml")
    config = _config(
        arms=("control", "treatment"), metrics=METRICS[:1], correction_suppressed=suppressed
    )
    return analyze_cells(cells, config, segment_set)


def test_suppressed_segments_excluded_or_counted():
    excluded, counted = _with_tiny_segment("excluded"), _with_tiny_segment("counted")
    for results in (excluded, counted):
        (tiny,) = [r for r in results.results if r.segment == "s3"]
        assert tiny.suppressed
        assert math.isnan(tiny.p_value)
        assert math.isnan(tiny.p_adjusted)
    ex = {r.segment: r for r in excluded.results}
    co = {r.segment: r for r in counted.results}
    assert (ex["s3"].family, ex["s3"].family_size) == ("", 0)
    assert (co["s3"].family, co["s3"].family_size) == ("segments:conversion:treatment", 4)
    visible = ["s0", "s1", "s2"]
    assert {ex[s].family_size for s in visible} == {3}
    assert {co[s].family_size for s in visible} == {4}
    _check_family([ex[s] for s in visible])  # Holm over the three visible tests only
    # Counted: the withheld test's raw p-value (same data, no floor) takes part.
    open_results = _open_floor()
    raw = [open_results[s].p_value for s in [*visible, "s3"]]
    np.testing.assert_allclose([co[s].p_adjusted for s in visible], _sm(raw)[:3], rtol=1e-12)
    assert ex["all"].p_adjusted == co["all"].p_adjusted  # the primary family is untouched
    assert excluded.correction_suppressed == "excluded"


def _open_floor() -> dict[str, ResultRow]:
    """The same analysis as :func:`_with_tiny_segment` with the floor at 1."""
    u = _users(arms=("control", "treatment"))
    part = np.minimum(u["bucket"] % 4, 3)
    part[(part == 3) & (np.arange(part.size) % 40 != 0)] = 0
    members = {"all": np.ones(part.size, bool)} | {f"s{k}": part == k for k in range(4)}
    cells = cell_sums({"conversion": u["conversion"]}, arm=u["arm"], members=members)
    segment_set = parse_segments(yaml.safe_load(SEGMENTS.format(floor=1)), source="s.yaml")
    config = _config(arms=("control", "treatment"), metrics=METRICS[:1])
    return {r.segment: r for r in analyze_cells(cells, config, segment_set).results}


def test_families_round_trip_results_json_and_older_files_load():
    results = _with_tiny_segment("counted")
    doc = json.loads(results.to_json())
    tiny = next(r for r in doc["results"] if r["segment"] == "s3")
    assert tiny["p_value"] is None
    assert tiny["p_adjusted"] is None
    assert tiny["family"] == "segments:conversion:treatment"
    assert tiny["family_size"] == 4
    assert doc["correction_scope"] == "primary_and_segments"
    back = AnalysisResults.from_json_dict(doc)
    assert [(r.family, r.family_size) for r in back.results] == [
        (r.family, r.family_size) for r in results.results
    ]
    for row in doc["results"]:
        del row["family"], row["family_size"]
    del doc["correction_scope"], doc["correction_suppressed"]
    old = AnalysisResults.from_json_dict(doc)
    assert {(r.family, r.family_size) for r in old.results} == {("", 0)}
    assert old.correction_scope == ""


def test_scope_and_suppressed_defaults_and_validation():
    config = _config()
    assert config.correction_scope == "primary_and_segments"
    assert config.correction_suppressed == "excluded"
    with pytest.raises(ValueError, match="correction_scope"):
        _config(correction_scope="per_segment")
    with pytest.raises(ValueError, match="correction_suppressed"):
        _config(correction_suppressed="hidden")
