"""Shrunken segment lifts on the rows: which family, which prior, what is left null."""

import math

import numpy as np
import pytest
import yaml

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.results import AnalysisResults
from experiment.stats import shrink_lifts
from segments import parse_segments
from tests.fixtures.dataset import EXPERIMENT_YAML
from tests.fixtures.sums import cell_sums

BANDS = [(0, 5), (5, 10), (10, 20), (20, 30), (30, 45)]


def _setup(*, exclusive: bool, min_size: int = 1):
    gen = np.random.default_rng(4)
    n = 12_000
    days = gen.integers(0, 60, n)
    arm = gen.choice(["control", "treatment"], n)
    members = {"all": np.ones(n, bool)}
    rules = []
    for lo, hi in BANDS:
        name = f"d{lo}_{hi}"
        members[name] = (days >= lo) & (days < hi)
        rules.append({"name": name, "where": f"days_since_last_login >= {lo} and "
                      f"days_since_last_login < {hi}"})  # fmt: skip
    if exclusive:
        members["rest"] = days >= BANDS[-1][1]
    else:  # overlapping: one more segment across the bands
        members["recent"] = days < 15
        rules.append({"name": "recent", "where": "days_since_last_login < 15"})
    lift = np.where(days < 10, 0.03, 0.0) * (arm == "treatment")
    conversion = (gen.random(n) < 0.08 + lift).astype(float)
    cells = cell_sums({"conversion": conversion}, arm=arm, members=members)
    doc = {"exclusive": exclusive, "min_size": min_size, "segments": rules}
    segment_set = parse_segments(doc, source="segments.yaml")
    config = yaml.safe_load(EXPERIMENT_YAML)
    del config["segments"]
    config["metrics"] = config["metrics"][:1]
    return cells, analyze_cells(cells, ExperimentConfig.model_validate(config), segment_set)


def _lifts(results: AnalysisResults):
    rows = list(results.results)
    return rows, np.array([r.lift_abs for r in rows]), np.array([_se(r) for r in rows])


def test_exclusive_rows_carry_paule_mandel_shrinkage_of_their_segments():
    _cells, results = _setup(exclusive=True)
    rows, y, se = _lifts(results)
    assert rows[0].segment == "all"
    assert math.isnan(rows[0].lift_abs_shrunk)
    assert math.isnan(rows[0].shrinkage)
    ref = shrink_lifts(y[1:], se[1:], alpha=0.05)
    for row, lift, low, high, b in zip(
        rows[1:], ref.lift, ref.low, ref.high, ref.shrinkage, strict=True
    ):
        assert row.lift_abs_shrunk == pytest.approx(lift, rel=1e-9)
        assert row.ci_abs_shrunk_low == pytest.approx(low, rel=1e-9)
        assert row.ci_abs_shrunk_high == pytest.approx(high, rel=1e-9)
        assert row.shrinkage == pytest.approx(b, rel=1e-9)
        assert 0 <= row.shrinkage <= 1
        assert row.lift_rel_shrunk == pytest.approx(lift / row.mean_control)
        assert row.ci_shrunk_low == pytest.approx(low / row.mean_control)
        assert row.ci_shrunk_high == pytest.approx(high / row.mean_control)
    doc = results.to_json_dict()
    assert doc["results"][0]["lift_abs_shrunk"] is None
    assert isinstance(doc["results"][1]["lift_abs_shrunk"], float)
    back = AnalysisResults.from_json_dict(doc)
    assert back.results[1].shrinkage == pytest.approx(rows[1].shrinkage)


def test_overlapping_rows_shrink_toward_all():
    cells, results = _setup(exclusive=False)
    rows, y, se = _lifts(results)
    units = cells.units.sum(axis=1)
    ref = shrink_lifts(
        y[1:], se[1:], alpha=0.05, overall=(y[0], se[0]), shares=units[1:] / units[0]
    )
    assert ref.prior_mean == y[0]
    got = np.array([r.lift_abs_shrunk for r in rows[1:]])
    np.testing.assert_allclose(got, ref.lift, rtol=1e-9)


def test_withheld_segments_are_left_out_and_null():
    _cells, results = _setup(exclusive=True, min_size=1500)
    withheld = [r for r in results.results if r.suppressed]
    assert withheld
    assert all(math.isnan(r.lift_abs_shrunk) and math.isnan(r.shrinkage) for r in withheld)
    shown = [r for r in results.results[1:] if not r.suppressed]
    assert len(shown) == 4  # the family is the 4 segments shown, no more
    assert all(math.isfinite(r.lift_abs_shrunk) for r in shown)


def _se(row):
    """Welch's standard error of a proportion's absolute lift, from the row's means and counts."""
    p_c, p_t = row.mean_control, row.mean_treatment
    return math.sqrt(
        p_c * (1 - p_c) / (row.n_control - 1) + p_t * (1 - p_t) / (row.n_treatment - 1)
    )
