import json

import pytest
from typer.testing import CliRunner

from experiment.cli import app
from experiment.errors import DataError
from experiment.results import AnalysisResults, load_results
from experiment.results.schema import schema_problem
from tests.fixtures.dataset import EXPERIMENT_YAML

runner = CliRunner()

# Every optional method on: CUPED, a cap, a guardrail, sequential (timeline), one-sided.
RICH_EXPERIMENT = (
    EXPERIMENT_YAML.replace(
        "value: revenue}",
        "value: revenue, cuped: orders_90d, cap: {quantile: 0.99}, guardrail: {max_drop: 0.05}}\n"
        "  - {name: buyers, kind: proportion, event: purchase, alternative: greater, "
        "higher_is_better: false}",
    )
    + "sequential: true\ncorrection_scope: experiment\n"
)


@pytest.fixture(scope="module")
def written(dataset_dir, tmp_path_factory):
    """results.json files written by the real ``exp analyze``: plain and every method on."""
    out = {}
    for name, text in [("plain", EXPERIMENT_YAML), ("rich", RICH_EXPERIMENT)]:
        folder = tmp_path_factory.mktemp(name)
        experiment = folder / "experiment.yaml"
        experiment.write_text(text.replace("segments.yaml", str(dataset_dir / "segments.yaml")))
        argv = ["analyze", str(dataset_dir), "-e", str(experiment), "--out", str(folder)]
        result = runner.invoke(app, [*argv, "--no-html"])
        assert result.exit_code == 0, result.output
        out[name] = folder / "results.json"
    return out


@pytest.mark.parametrize("name", ["plain", "rich"])
def test_every_results_json_exp_analyze_writes_passes_the_schema(written, name):
    doc = json.loads(written[name].read_text())
    assert schema_problem(AnalysisResults, doc, derived=("confidence_level",)) is None
    loaded = load_results(written[name])
    assert len(loaded.results) == len(doc["results"])
    if name == "rich":
        assert doc["timeline"]
        assert doc["cuped_covariates"]


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (lambda d: d.update(results="x"), "field 'results': expected a list, found a string"),
        (lambda d: d.update(srm=[]), "field 'srm': expected an object, found a list"),
        (lambda d: d["results"][0].update(segment=1), "'results[0].segment': expected a string"),
        (lambda d: d["results"][0].pop("lift_rel"), "field 'results[0].lift_rel' is missing"),
        (lambda d: d.update(surprise=1), "unknown top-level field 'surprise'"),
        (lambda d: d["timeline"][0].update(date=5), "field 'timeline[0].date': expected a string"),
        (lambda d: d.update(arms="ab"), "field 'arms': expected a list, found a string"),
        (lambda d: d.update(alpha=True), "field 'alpha': expected a number or null, found a bool"),
        (lambda d: d.update(cuped_covariates=[]), "'cuped_covariates': expected an object"),
    ],
)
def test_load_results_names_the_field_and_types(written, tmp_path, change, phrase):
    doc = json.loads(written["rich"].read_text())
    change(doc)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"results\.json: ") as info:
        load_results(path)
    assert phrase in str(info.value)
    assert "\n" not in str(info.value)


def test_load_results_allows_extra_fields_below_the_top_level(written, tmp_path):
    doc = json.loads(written["plain"].read_text())
    doc["results"][0]["a_future_field"] = 1
    doc["segments"][0]["a_future_field"] = "x"
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    assert load_results(path).results[0].segment == doc["results"][0]["segment"]


def test_null_numbers_are_accepted(written, tmp_path):
    doc = json.loads(written["plain"].read_text())
    doc["results"][0]["p_value"] = None
    doc["results"][0]["n_control"] = None
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    assert load_results(path).results[0].n_control == 0
