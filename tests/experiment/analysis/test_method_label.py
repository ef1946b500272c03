"""Every row's ``method`` names what actually ran: spies on the stats functions.

The expected names are written here from the stats code (which function runs
which test), not read from ``experiment/plan.py``: ``welch_ttest`` is Welch's t,
``ratio_ttest`` Welch's t on delta-method variances of the ratios, ``cuped_ttest``
Welch's t on the CUPED-adjusted values; every one of them builds the relative
interval it is asked for (``relative_interval``: Fieller, log-ratio or symmetric
delta), checked here by the shape of the interval; ``adjust_pvalues`` applies the
correction; ``sequential_interval`` builds the confidence sequence.
"""

import itertools
import math
from typing import Any

import numpy as np
import pytest

import experiment.analysis.compare as compare_module
import experiment.analysis.families as families_module
import experiment.analysis.lift as lift_module
from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.sums import JointSums
from tests.fixtures.sums import Values, cell_sums

# Written from experiment/stats: the function that runs -> the test it runs.
TEST_NAME = {
    "welch_ttest": "welch-t",
    "ratio_ttest": "delta-method welch-t",
    "cuped_ttest": "cuped(x_pre) welch-t",
}
CORRECTION_NAME = {"holm": "holm", "bh": "bh", "none": "no correction"}
RELATIVE_CI = {
    "fieller": "fieller relative CI",
    "log": "log-ratio relative CI",
    "delta": "delta-method relative CI",
}

METRICS: dict[str, dict[str, Any]] = {
    "proportion": {"kind": "proportion", "event": "purchase"},
    "mean": {"kind": "mean", "event": "purchase", "value": "revenue"},
    "ratio": {"kind": "ratio", "numerator": {"event": "click"}, "denominator": {"event": "imp"}},
    "retention": {"kind": "retention", "event": "session", "day": 3},
}
CASES = [
    (kind, cuped, sequential, alternative, correction, interval)
    for kind, cuped, sequential, alternative in itertools.product(
        METRICS, (False, True), (False, True), ("two-sided", "greater", "less")
    )
    if not (kind == "ratio" and cuped)  # the config rejects CUPED on a ratio
    for correction in (("holm", "bh", "none") if alternative == "two-sided" else ("holm",))
    for interval in (RELATIVE_CI if correction == "holm" else ("fieller",))
]


def _cells(kind: str, *, cuped: bool):
    gen = np.random.default_rng(3)
    n = 1200
    arm = gen.choice(["control", "treatment"], n)
    x = gen.gamma(2.0, 3.0, n)
    values: Values
    if kind == "ratio":
        imp = gen.poisson(8.0, n).astype(float) + 1.0
        values = (gen.binomial(imp.astype(int), 0.1).astype(float), imp)
    elif kind == "mean":
        values = x + gen.gamma(2.0, 2.0, n)
    else:
        values = (gen.random(n) < 0.2 + 0.02 * x).astype(float)
    members = {"all": np.ones(n, bool), "a": x > 5.0, "rest": x <= 5.0}
    cells = cell_sums({"m": values}, arm=arm, members=members)
    if cuped:
        assert isinstance(values, np.ndarray)
        joint = cell_sums({"m": (values, x)}, arm=arm, members=members).metrics["m"]
        assert isinstance(joint, JointSums)
        cells.cuped["m"] = joint
    return cells


def _spy(monkeypatch, module, name, calls):
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append((name, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_method_label_names_the_functions_that_ran(monkeypatch, case):
    kind, cuped, sequential, alternative, correction, interval = case
    metric = {"name": "m", **METRICS[kind], "alternative": alternative}
    if cuped:
        metric["cuped"] = "x_pre"
    config = ExperimentConfig.model_validate(
        {
            "name": "e",
            "correction": correction,
            "sequential": sequential,
            "metrics": [metric],
            "relative_interval": interval,
        }
    )
    cells = _cells(kind, cuped=cuped)
    calls: list[tuple[str, dict[str, Any]]] = []
    for name in TEST_NAME:
        _spy(monkeypatch, compare_module, name, calls)
    _spy(monkeypatch, lift_module, "sequential_interval", calls)
    _spy(monkeypatch, families_module, "adjust_pvalues", calls)

    rows = analyze_cells(cells, config, None).results

    (test,) = {name for name, _ in calls if name in TEST_NAME}
    (ran_interval,) = {kw["relative_interval"] for name, kw in calls if name in TEST_NAME}
    (adjust,) = [kw for name, kw in calls if name == "adjust_pvalues"]
    ran_sequence = any(name == "sequential_interval" for name, _ in calls)
    expected = TEST_NAME[test] + ("" if alternative == "two-sided" else f" ({alternative})")
    parts = [expected, RELATIVE_CI[ran_interval], CORRECTION_NAME[adjust["method"]]]
    if ran_sequence:
        parts.append("confidence sequence")
    assert ran_sequence == sequential
    assert test == ("cuped_ttest" if cuped else "ratio_ttest" if kind == "ratio" else "welch_ttest")
    assert ran_interval == interval
    assert len(rows) == 3
    for row in rows:
        assert row.method == ", ".join(parts)
        _assert_interval_shape(row, ran_interval, alternative)


def _assert_interval_shape(row, interval, alternative):
    """The interval has the shape of the construction that ran."""
    if alternative != "two-sided" or not math.isfinite(row.ci_low):
        return
    if interval == "delta":  # lift_rel ± crit·se_rel
        assert (row.ci_low + row.ci_high) / 2 == pytest.approx(row.lift_rel, rel=1e-12)
    elif interval == "log":  # symmetric around log(1 + lift_rel)
        geometric = math.sqrt((1 + row.ci_low) * (1 + row.ci_high))
        assert geometric == pytest.approx(1 + row.lift_rel, rel=1e-12)
    else:  # Fieller inverts the test: excludes 0 exactly when p < alpha
        assert (row.ci_low > 0 or row.ci_high < 0) == (row.p_value < 0.05)
