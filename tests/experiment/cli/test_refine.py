"""`exp refine` and `exp report --refinement` end to end (typer's CliRunner, real DuckDB)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from experiment.cli import app
from experiment.results.refinement import load_refinement
from segments import load_segments
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.dataset import EXPERIMENT_YAML, write_dataset
from tests.fixtures.refinement import make_refinement

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("refine") / "data", n_users=3000, n_events=30_000)


@pytest.fixture(scope="module")
def refined(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `exp refine` run with a report (the dataset's own analysis)."""
    out = tmp_path_factory.mktemp("refined")
    args = ["refine", str(data), "-e", str(data / "experiment.yaml")]
    args += ["--out", str(out / "proposals.yaml"), "--report", str(out / "report.html")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_refine_writes_proposals_evidence_and_report(refined, data):
    assert sorted(p.name for p in refined.iterdir()) == [
        "proposals.json",
        "proposals.yaml",
        "report.html",
    ]
    found = load_refinement(refined / "proposals.json")
    assert found.experiment == "exp1"
    assert found.metric == "conversion"  # the experiment's first metric
    proposed = load_segments(refined / "proposals.yaml")
    original = load_segments(data / "segments.yaml")
    added = [s.name for p in found.proposals if p.significant for s in p.new_segments]
    assert sorted(proposed.names) == sorted([*original.names, *added])
    page = (refined / "report.html").read_text()
    assert 'id="refinements"' in page
    assert page.count('<section class="proposal"') == len(found.proposals)


def test_refine_output_works_in_validate_and_analyze(refined, data, tmp_path):
    proposals = refined / "proposals.yaml"
    (tmp_path / "refined.yaml").write_text(EXPERIMENT_YAML.replace("segments.yaml", str(proposals)))
    checked = runner.invoke(app, ["segments", "validate", str(proposals), "-d", str(data)])
    assert checked.exit_code in (0, 1), checked.output  # 1: a segment fails a size check
    args = ["analyze", str(data), "-e", str(tmp_path / "refined.yaml"), "--out", str(tmp_path)]
    analysed = runner.invoke(app, [*args, "--no-html"])
    assert analysed.exit_code == 0, analysed.output
    segments = {
        r["segment"] for r in json.loads((tmp_path / "results.json").read_text())["results"]
    }
    assert segments == {"all", *load_segments(proposals).names}

    # --results: the report shows that analysis (not a fresh one) with the refinement
    args = ["refine", str(data), "-e", str(data / "experiment.yaml"), "--attributes", "device"]
    args += ["--out", str(tmp_path / "again.yaml"), "--report", str(tmp_path / "r.html")]
    reported = runner.invoke(app, [*args, "--results", str(tmp_path / "results.json")])
    assert reported.exit_code == 0, reported.output
    page = (tmp_path / "r.html").read_text()
    assert 'id="refinements"' in page
    assert all(f'data-segment="{name}"' in page for name in segments)


def test_refine_prints_the_proposals_table(data, tmp_path):
    args = ["refine", str(data), "-e", str(data / "experiment.yaml"), "--out"]
    result = runner.invoke(app, [*args, str(tmp_path / "p.yml"), "--attributes", "device"])
    assert result.exit_code == 0, result.output
    assert "refinements of conversion" in result.stdout
    assert "proposals added" in result.stdout
    assert load_refinement(tmp_path / "p.json").attributes == ("device",)


def test_refine_json_on_stdout_is_the_evidence_file(data, tmp_path):
    args = ["refine", str(data), "-e", str(data / "experiment.yaml"), "--out"]
    args += [str(tmp_path / "p.yml"), "--attributes", "device", "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((tmp_path / "p.json").read_text())


def test_report_renders_a_refinement_from_json(tmp_path):
    data = write_dataset(tmp_path / "data", n_users=400, n_events=3000)
    analysed = runner.invoke(
        app, ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(tmp_path)]
    )
    assert analysed.exit_code == 0, analysed.output
    (tmp_path / "p.json").write_text(make_refinement().to_json())
    out = tmp_path / "r.html"
    args = ["report", str(tmp_path / "results.json"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--refinement", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert 'id="refinements"' in page
    assert "split of &#39;buyers&#39; on days_since_last_login at 30" in page
    # the page without --refinement is the analyze page, unchanged
    assert (tmp_path / "report.html").read_text() == render_without(tmp_path)

    (tmp_path / "other.json").write_text(make_refinement(experiment="other").to_json())
    out.unlink()
    wrong = runner.invoke(app, [*args, "--refinement", str(tmp_path / "other.json")])
    assert_one_line_error(wrong, "other.json: refinement of experiment 'other'")
    assert not out.exists()


def render_without(folder: Path) -> str:
    out = folder / "plain.html"
    result = runner.invoke(app, ["report", str(folder / "results.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_text()


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (["--metric", "nope"], "nope"),
        (["--arm", "nope"], "nope"),
        (["--attributes", "nope"], "nope"),
        (["--out", "SEGMENTS"], "is an input of this run"),
        (["--report", "r.html", "--results", "missing.json"], "missing.json"),
    ],
)
def test_refine_bad_input_is_one_line_exit_2_and_writes_nothing(data, tmp_path, extra, phrase):
    extra = [str(data / "segments.yaml") if e == "SEGMENTS" else e for e in extra]
    before = sorted(data.iterdir())
    args = ["refine", str(data), "-e", str(data / "experiment.yaml")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "p.yaml"), *extra])
    assert_one_line_error(result, phrase)
    assert list(tmp_path.iterdir()) == []
    assert sorted(data.iterdir()) == before


def test_refine_rejects_results_of_another_experiment(data, tmp_path):
    from tests.fixtures.results import make_results

    (tmp_path / "results.json").write_text(make_results().to_json())
    args = ["refine", str(data), "-e", str(data / "experiment.yaml"), "--out"]
    args += [str(tmp_path / "p.yaml"), "--report", str(tmp_path / "r.html")]
    result = runner.invoke(app, [*args, "--results", str(tmp_path / "results.json")])
    assert_one_line_error(result, "results of experiment 'winback-offer', not 'exp1'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (["--out", "p.txt"], "must end in .yaml or .yml"),
        (["--results", "r.json"], "--results is only read for --report"),
        (["--attributes", " , "], "give column names separated by commas"),
    ],
)
def test_refine_bad_option_is_exit_2(data, tmp_path, monkeypatch, extra, phrase):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["refine", str(data), "-e", str(data / "experiment.yaml"), *extra])
    assert result.exit_code == 2
    assert phrase in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_refine_help_explains_the_method():
    result = runner.invoke(app, ["refine", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    for phrase in ("discovery half", "estimation half", "corrected", "--attributes", "--report"):
        assert phrase in text, phrase


@pytest.mark.slow
def test_refine_on_simulated_split_scenario_end_to_end(tmp_path):
    data = tmp_path / "data"
    args = ["simulate", "--scenario", "split", "--users", "6000", "--days", "7"]
    simulated = runner.invoke(app, [*args, "--seed", "3", "--out", str(data)])
    assert simulated.exit_code == 0, simulated.output
    out = tmp_path / "out"
    args = ["refine", str(data), "-e", str(data / "experiment.yaml"), "--out"]
    args += [str(out / "proposals.yaml"), "--report", str(out / "report.html")]
    refined = runner.invoke(app, [*args, "--attributes", "price_sensitivity,device,orders_90d"])
    assert refined.exit_code == 0, refined.output
    found = load_refinement(out / "proposals.json")
    assert found.proposals
    assert {p.attribute for p in found.proposals if p.kind == "split"} <= {
        "price_sensitivity",
        "device",
        "orders_90d",
    }
    proposals = out / "proposals.yaml"
    checked = runner.invoke(app, ["segments", "validate", str(proposals), "-d", str(data)])
    assert checked.exit_code in (0, 1), checked.output
    experiment = (data / "experiment.yaml").read_text()
    (data / "refined.yaml").write_text(experiment.replace("segments.yaml", str(proposals)))
    args = ["analyze", str(data), "-e", str(data / "refined.yaml"), "--out", str(out)]
    analysed = runner.invoke(app, [*args, "--no-html"])
    assert analysed.exit_code == 0, analysed.output
    rows = json.loads((out / "results.json").read_text())["results"]
    assert {r["segment"] for r in rows} >= set(load_segments(proposals).names)
