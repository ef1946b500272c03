"""The Methods section says what ran, checked against the stats functions themselves."""

import math
from dataclasses import replace

import numpy as np
import pytest

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.stats import bayes_beta_binomial, bayes_normal, cuped_ttest, ratio_ttest
from experiment.sums import JointSums
from reports.methods import cuped_notes, family_lines, is_cuped, metric_methods, shown_means
from tests.fixtures.results import make_results
from tests.fixtures.sums import Values, cell_sums

ARMS = ("control", "t1", "t2")


@pytest.fixture(scope="module")
def analysed():
    gen = np.random.default_rng(5)
    n = 3000
    arm = gen.choice(ARMS, n)
    x = gen.gamma(2.0, 3.0, n)
    imp = gen.poisson(8.0, n).astype(float) + 1.0
    metrics: dict[str, Values] = {
        "conv": (gen.random(n) < 0.15).astype(float),
        "conv_cuped": (gen.random(n) < 0.05 + 0.03 * x).astype(float),
        "spend": x + gen.gamma(2.0, 2.0, n),
        "ctr": (gen.binomial(imp.astype(int), 0.1).astype(float), imp),
    }
    members = {"all": np.ones(n, bool), "high": x > 5.0, "rest": x <= 5.0}
    cells = cell_sums(metrics, arm=arm, members=members, arms=ARMS)
    conv_cuped = metrics["conv_cuped"]
    assert isinstance(conv_cuped, np.ndarray)
    joint = cell_sums({"m": (conv_cuped, x)}, arm=arm, members=members, arms=ARMS).metrics["m"]
    assert isinstance(joint, JointSums)
    cells.cuped["conv_cuped"] = joint
    config = ExperimentConfig.model_validate(
        {
            "name": "e",
            "control": "control",
            "arms": {"control": 1, "t1": 1, "t2": 1},
            "correction": "bh",
            "sequential": True,
            "metrics": [
                {"name": "conv", "kind": "proportion", "event": "purchase"},
                {"name": "conv_cuped", "kind": "proportion", "event": "purchase",
                 "cuped": "x_pre"},
                {"name": "spend", "kind": "mean", "event": "purchase", "value": "revenue"},
                {"name": "ctr", "kind": "ratio", "numerator": {"event": "click"},
                 "denominator": {"event": "imp"}},
            ],
        }
    )  # fmt: skip
    return cells, analyze_cells(cells, config, None)


def _row(results, metric, arm="t1"):
    return next(
        r for r in results.results if r.metric == metric and r.segment == "all" and r.arm == arm
    )


def test_methods_name_the_bayesian_model_that_ran(analysed):
    cells, results = analysed
    methods = {m.metric: m for m in metric_methods(results)}
    c, j = 0, 1
    conv = cells.metrics["conv"]
    beta = bayes_beta_binomial(conv[:, c], conv[:, j]).chance_to_win[0]
    assert _row(results, "conv").chance_to_win == pytest.approx(beta, rel=1e-9)
    assert "Beta-Binomial" in methods["conv"].bayes
    joint = cells.cuped["conv_cuped"]
    normal = bayes_normal(cuped_ttest(joint[:, c], joint[:, j])).chance_to_win[0]
    assert _row(results, "conv_cuped").chance_to_win == pytest.approx(normal, rel=1e-9)
    assert "normal approximation" in methods["conv_cuped"].bayes
    assert "normal approximation" in methods["spend"].bayes


def test_methods_name_test_interval_family_and_horizon(analysed):
    cells, results = analysed
    methods = {m.metric: m for m in metric_methods(results)}
    ctr = cells.metrics["ctr"]
    assert isinstance(ctr, JointSums)
    ref = ratio_ttest(ctr[:, 0], ctr[:, 1])
    assert _row(results, "ctr").p_value == pytest.approx(ref.p_value[0], rel=1e-9)
    assert math.isfinite(ref.dof[0])  # a t-test on finite (Satterthwaite) df, not a z-test
    assert "Welch's t-test" in methods["ctr"].test
    assert "delta-method" in methods["ctr"].test
    assert "z-test" not in methods["ctr"].test
    for name, m in methods.items():
        # bh in the default scope: all over 4 metrics × 2 arms; 2 segments per metric and arm
        assert m.correction.startswith("Benjamini-Hochberg")
        assert "primary (all × every metric and treatment arm: 8 tests)" in m.correction
        assert f"segments:{name}:t1 (this metric's segments in one arm: 2 tests)" in m.correction
        assert f"segments:{name}:t2" in m.correction
        assert m.horizon.startswith("sequential")
        assert "Fieller" in m.interval_rel
        assert "adjusted p-value" in m.interval_rel
    assert "CUPED-adjusted" in methods["conv_cuped"].test
    assert "covariate x_pre" in methods["conv_cuped"].cuped
    assert methods["conv"].cuped == ""
    (note,) = cuped_notes(results)
    assert note.startswith("conv_cuped: CUPED, covariate x_pre; variance")


def test_methods_of_a_file_without_families_describe_the_per_metric_family(analysed):
    _cells, results = analysed
    old = replace(results, results=tuple(replace(r, family="") for r in results.results))
    for m in metric_methods(old):
        # bh within each metric: 3 segments × 2 treatment arms
        assert "over 6 tests" in m.correction
        assert "this metric's 3 segments (all included) × 2 treatment arms" in m.correction


def test_terminal_caption_names_the_families(analysed):
    _cells, results = analysed
    (line,) = family_lines(results)
    assert line.startswith("p adj.: Benjamini-Hochberg")
    assert "primary (8)" in line
    assert "segments:ctr:t2 (2)" in line


def test_cuped_rows_show_adjusted_means(analysed):
    _cells, results = analysed
    row = _row(results, "conv_cuped")
    assert is_cuped(row)
    mean_c, mean_t, mark = shown_means(row)
    assert (mean_c, mean_t, mark) == (row.mean_control_adj, row.mean_treatment_adj, "adjusted")
    assert mean_t - mean_c == pytest.approx(row.lift_abs, rel=1e-9)
    plain = _row(results, "conv")
    assert shown_means(plain) == (plain.mean_control, plain.mean_treatment, "")
    old = replace(row, mean_control_adj=math.nan, mean_treatment_adj=math.nan)
    assert shown_means(old)[2] == "raw"  # an older file: marked, never passed off as adjusted


def test_methods_of_an_old_results_file_read_its_labels():
    row = replace(make_results().results[0], metric="ctr", metric_kind="ratio",
                  method="delta-method z, holm")  # fmt: skip
    (m,) = metric_methods(replace(make_results(), results=(row,)))
    assert "Welch's t-test" in m.test
    assert m.correction.startswith("Holm (family-wise error) over 1 test:")
    assert m.horizon.startswith("fixed horizon")


def test_methods_say_whether_withheld_segments_counted(analysed):
    _cells, results = analysed

    def hide(counted: bool):
        rows = tuple(
            replace(r, suppressed=True, family=r.family if counted else "", family_size=0)
            if r.segment == "high" and r.metric == "conv"
            else r
            for r in results.results
        )
        return {m.metric: m for m in metric_methods(replace(results, results=rows))}["conv"]

    assert "2 withheld (privacy floor) counted in their family" in hide(True).correction
    assert "2 withheld (privacy floor) excluded from every family" in hide(False).correction
