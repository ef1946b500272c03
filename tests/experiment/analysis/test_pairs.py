"""Treatment against treatment (``comparisons``): rows equal a direct Welch test, own families."""

import json

import numpy as np
import pytest
import yaml
from scipy import stats

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig, load_experiment
from experiment.errors import ConfigError
from experiment.results import AnalysisResults
from tests.fixtures.dataset import EXPERIMENT_YAML
from tests.fixtures.sums import Values, cell_sums

ARMS = ("control", "a", "b")


def _config(**extra):
    doc = yaml.safe_load(EXPERIMENT_YAML)
    del doc["segments"]
    doc["arms"] = {"control": 0.4, "a": 0.3, "b": 0.3}
    return ExperimentConfig.model_validate({**doc, **extra})


@pytest.fixture(scope="module")
def analysed():
    gen = np.random.default_rng(7)
    n = 3000
    arm = gen.choice(ARMS, n)
    revenue = gen.lognormal(1.0, 1.0, n) * (gen.random(n) < np.where(arm == "b", 0.3, 0.2))
    impressions = gen.poisson(9.0, n).astype(float)
    metrics: dict[str, Values] = {
        "conversion": (revenue > 0).astype(float),
        "ctr": (gen.binomial(impressions.astype(int), 0.15).astype(float), impressions),
        "revenue_per_user": revenue,
    }
    mobile = gen.random(n) < 0.4
    members = {"all": np.ones(n, bool), "mobile": mobile}
    cells = cell_sums(metrics, arm=arm, members=members, arms=ARMS)
    results = analyze_cells(cells, _config(comparisons="all_pairs"), None)
    return arm, metrics, members, results, cells


def test_pair_rows_equal_scipy_welch_between_the_two_arms(analysed):
    arm, metrics, members, results, _cells = analysed
    rows = [r for r in results.arm_comparisons if r.metric == "revenue_per_user"]
    assert {(r.baseline_arm, r.arm) for r in rows} == {("a", "b")}
    for row in rows:
        mask = members[row.segment]
        base = metrics["revenue_per_user"][mask & (arm == "a")]
        other = metrics["revenue_per_user"][mask & (arm == "b")]
        ref = stats.ttest_ind(other, base, equal_var=False)
        assert row.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        assert row.lift_abs == pytest.approx(other.mean() - base.mean(), rel=1e-12)
        assert row.mean_control == pytest.approx(base.mean(), rel=1e-12)
        assert row.n_control == base.size
        assert row.n_treatment == other.size


def test_pair_rows_have_their_own_families_and_leave_control_rows_alone(analysed):
    *_, results, cells = analysed
    assert {r.family for r in results.arm_comparisons} >= {"pairs:primary"}
    assert all(r.family.startswith("pairs:") for r in results.arm_comparisons)
    assert all(r.baseline_arm == "" for r in results.results)
    primary = [r for r in results.arm_comparisons if r.family == "pairs:primary"]
    assert primary[0].family_size == 3  # three metrics × one pair
    alone = analyze_cells(cells, _config(), None)
    assert alone.arm_comparisons == ()
    assert [r.p_adjusted for r in alone.results] == [r.p_adjusted for r in results.results]
    back = AnalysisResults.from_json_dict(json.loads(results.to_json()))
    assert [r.p_value for r in back.arm_comparisons] == pytest.approx(
        [r.p_value for r in results.arm_comparisons]
    )
    assert back.arm_comparisons[0].baseline_arm == "a"


def test_comparisons_validate_pair_names(tmp_path):
    assert _config(comparisons=[["a", "b"]]).arm_pairs() == [("a", "b")]
    assert _config(comparisons="all_pairs").arm_pairs() == [("a", "b")]
    for bad in ([["a", "c"]], [["a", "a"]], [["control", "a"]]):
        with pytest.raises(ValueError, match="two different treatment arms"):
            _config(comparisons=bad)
    doc = yaml.safe_load(EXPERIMENT_YAML)
    doc["arms"] = {"control": 0.4, "a": 0.3, "b": 0.3}
    doc["comparisons"] = [["a", "typo"]]
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    message = str(err.value)
    assert "\n" not in message
    assert "comparisons" in message or "two different treatment arms" in message
