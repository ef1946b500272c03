"""Guardrails: a row is breached when lift_rel < -max_drop is significant (one-sided)."""

import datetime as dt

import numpy as np
import pytest
from pydantic import ValidationError

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.sums import CellSums, MeanSums
from tests.fixtures.sums import delta_rel_bound

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def _config(max_drop: float) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "g",
            "metrics": [
                {"name": "conversion", "kind": "proportion", "event": "purchase"},
                {"name": "revenue", "kind": "mean", "event": "purchase", "value": "revenue",
                 "guardrail": {"max_drop": max_drop}},
            ],
        }
    )  # fmt: skip


def _cells() -> CellSums:
    n = np.full((4, 2), 2000.0)
    sd = 5.0
    revenue = MeanSums(
        n=n,
        mean=np.array([[10.0, 10.1], [10.0, 9.9], [10.0, 9.5], [10.0, 9.0]]),
        m2=np.full((4, 2), sd**2 * 1999.0),
    )
    conversion = MeanSums(n=n, mean=np.full((4, 2), 0.1), m2=np.full((4, 2), 0.09 * 2000))
    return CellSums(
        segments=("all", "a", "b", "c"),
        arms=("control", "treatment"),
        units=n,
        metrics={"conversion": conversion, "revenue": revenue},
        window_start=START,
        window_end=START + dt.timedelta(days=14),
    )


def _bound(cells: CellSums, metric: str) -> np.ndarray:
    sums = cells.metrics[metric]
    assert isinstance(sums, MeanSums)
    return delta_rel_bound(sums, 0.05, upper=True)


@pytest.mark.parametrize("max_drop", [0.0, 0.02, 0.05])
def test_guardrail_breached_matches_one_sided_reference(max_drop):
    cells = _cells()
    results = analyze_cells(cells, _config(max_drop), None)
    upper = _bound(cells, "revenue")
    rows = {r.segment: r for r in results.results if r.metric == "revenue"}
    got = [rows[s].guardrail_breached for s in cells.segments]
    assert got == list(upper < -max_drop)
    assert not any(r.guardrail_breached for r in results.results if r.metric == "conversion")


def test_guardrail_flags_some_and_not_others():
    results = analyze_cells(_cells(), _config(0.02), None)
    flags = {r.segment: r.guardrail_breached for r in results.results if r.metric == "revenue"}
    assert flags == {"all": False, "a": False, "b": True, "c": True}


def test_guardrail_max_drop_must_be_a_share():
    with pytest.raises(ValidationError, match="max_drop"):
        _config(1.5)
