"""One-sided tests per metric: ``alternative: greater|less`` against scipy's Welch t-test."""

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.sums import CellSums, MeanSums

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def _sums(groups: list[np.ndarray]) -> MeanSums:
    return MeanSums(
        n=np.array([[len(g) for g in groups]], float),
        mean=np.array([[g.mean() for g in groups]]),
        m2=np.array([[((g - g.mean()) ** 2).sum() for g in groups]]),
    )


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_alternative_matches_scipy_welch(alternative):
    gen = np.random.default_rng(7)
    control, treatment = gen.gamma(2.0, 5.0, 800), gen.gamma(2.0, 5.3, 650)
    config = ExperimentConfig.model_validate(
        {
            "name": "a",
            "correction": "none",
            "metrics": [
                {"name": "revenue", "kind": "mean", "event": "purchase", "value": "revenue",
                 "alternative": alternative},
            ],
        }
    )  # fmt: skip
    cells = CellSums(
        segments=("all",),
        arms=("control", "treatment"),
        units=np.array([[800.0, 650.0]]),
        metrics={"revenue": _sums([control, treatment])},
        window_start=START,
        window_end=START + dt.timedelta(days=14),
    )
    (row,) = analyze_cells(cells, config, None).results
    ref = stats.ttest_ind(treatment, control, equal_var=False, alternative=alternative)
    ci = ref.confidence_interval(0.95)
    assert row.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert row.ci_abs_low == pytest.approx(ci.low, rel=1e-9)
    assert row.ci_abs_high == pytest.approx(ci.high, rel=1e-9)
    if alternative == "greater":
        assert math.isinf(row.ci_high)
        assert row.method == "welch-t (greater), fieller relative CI, no correction"
    elif alternative == "less":
        assert row.ci_low == -1.0  # the open side of a relative lift is the -100% floor
        assert math.isinf(row.ci_abs_low)
        assert row.method == "welch-t (less), fieller relative CI, no correction"
    else:
        assert row.method == "welch-t, fieller relative CI, no correction"
