"""End-to-end tests of `exp segments validate | show | fit` (typer's CliRunner, real DuckDB)."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.optimize import brentq
from statsmodels.stats.power import NormalIndPower
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.dataset import write_dataset

runner = CliRunner()

SEGMENTS = """\
min_size: 150
segments:
  - name: buyers
    where: "orders_90d >= 1"
  - name: mobile
    where: "device == 'mobile'"
  - name: tiny
    where: "orders_90d >= 5"
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_dataset(tmp_path_factory.mktemp("segcli"))
    (folder / "plan.yaml").write_text(SEGMENTS)
    return folder


@pytest.mark.parametrize(
    ("rule", "phrase"),
    [
        ("__import__('os').system('touch {marker}')", "function calls are not allowed"),
        ("open('{marker}', 'w').write('x') == 1", "function calls are not allowed"),
        ("device.__class__ == 'x'", "attribute access is not allowed"),
        ("days_since_last_login >= 14 and exec('1') == 1", "the only functions are"),
        ("1=1; DROP TABLE customers", "not a valid rule"),
        ("orders_90d >= 1; DROP TABLE customers", "not a valid rule"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "show", "fit"])
def test_segments_commands_reject_unsafe_rules_without_running_them(
    data_dir, tmp_path, rule, phrase, command
):
    marker = tmp_path / "pwned"
    plan = tmp_path / "bad.yaml"
    text = rule.format(marker=marker).replace('"', '\\"')
    plan.write_text(f'segments:\n  - name: evil\n    where: "{text}"\n')
    result = runner.invoke(app, ["segments", command, str(plan), "--data", str(data_dir)])
    assert_one_line_error(result, phrase)
    assert "segment 'evil'" in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "bad.models.json").exists()


def test_segments_validate_unknown_column_suggests_and_exits_2(data_dir, tmp_path):
    plan = tmp_path / "typo.yaml"
    plan.write_text('segments:\n  - name: lapsed\n    where: "days_since_last_logn >= 14"\n')
    result = runner.invoke(app, ["segments", "validate", str(plan), "--data", str(data_dir)])
    assert_one_line_error(result, "did you mean 'days_since_last_login'?")


def test_segments_validate_json_sizes_overlap_privacy_and_exit_code(data_dir):
    result = runner.invoke(
        app,
        ["segments", "validate", str(data_dir / "plan.yaml"), "--data", str(data_dir), "--json",
         "--metric", "buyer=orders_90d >= 1", "--metric", "orders=orders_90d",
         "--target-lift", "5"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # `tiny` is under the floor
    doc = json.loads(result.stdout)
    df = pq.read_table(data_dir / "customers.parquet").to_pandas()
    buyers = (df.orders_90d >= 1).to_numpy()
    mobile = (df.device == "mobile").to_numpy()
    by_name = {s["name"]: s for s in doc["segments"]}
    assert doc["set"] == "overlapping"
    assert doc["population"] == len(df)
    assert by_name["buyers"]["size"] == buyers.sum()
    assert by_name["buyers"]["share"] == pytest.approx(buyers.mean())
    assert by_name["mobile"]["flags"] == []
    tiny = by_name["tiny"]
    assert tiny["suppressed"] is True
    assert tiny["size"] is None
    assert tiny["share"] is None
    assert tiny["mde_rel"] == {"buyer": None, "orders": None}
    assert "BELOW_MIN_SIZE" in tiny["flags"]
    assert doc["overlap"][0][1] == (buyers & mobile).sum()
    assert doc["overlap"][1][0] == (buyers & mobile).sum()
    assert doc["overlap"][2][2] is None  # hidden under the floor
    assert doc["coverage"] == pytest.approx((buyers | mobile | (df.orders_90d >= 5)).mean())
    # MDE equals statsmodels' power function (n per arm = size / 2)
    n = mobile.sum() / 2
    engine = NormalIndPower()
    d = brentq(lambda e: engine.power(e, n, 0.05, ratio=1.0) - 0.8, 1e-6, 10, xtol=1e-15)
    sd = df.orders_90d[mobile].std(ddof=1)
    mean = df.orders_90d[mobile].mean()
    assert by_name["mobile"]["mde_abs"]["orders"] == pytest.approx(d * sd, abs=1e-6)
    assert by_name["mobile"]["mde_rel"]["orders"] == pytest.approx(d * sd / mean, abs=1e-6)
    p0 = buyers[mobile].mean()  # a proportion: the z test on the baseline variance p(1-p)
    assert by_name["mobile"]["mde_abs"]["buyer"] == pytest.approx(
        d * np.sqrt(p0 * (1 - p0)), rel=1e-9
    )


def test_segments_validate_flags_underpowered_and_passes_when_powered(data_dir, tmp_path):
    plan = tmp_path / "ok.yaml"
    plan.write_text(SEGMENTS.replace("min_size: 150", "min_size: 10").split("  - name: tiny")[0])
    args = [
        "segments",
        "validate",
        str(plan),
        "--data",
        str(data_dir),
        "--metric",
        "orders=orders_90d",
    ]
    strict = runner.invoke(app, [*args, "--target-lift", "0.01"])
    assert strict.exit_code == 1, strict.output
    assert "UNDERPOWERED" in strict.stdout
    assert "overlapping (each segment analysed on its own)" in strict.stdout
    loose = runner.invoke(app, [*args, "--target-lift", "2"])
    assert loose.exit_code == 0, loose.output
    assert "all segments pass" in loose.stdout


def test_segments_validate_with_experiment_uses_control_baselines(data_dir, tmp_path):
    plan = tmp_path / "exclusive.yaml"
    plan.write_text("exclusive: true\nmin_size: 10\n" + SEGMENTS.split("\n", 1)[1])
    exp = tmp_path / "exp.yaml"
    exp.write_text((data_dir / "experiment.yaml").read_text().replace("segments.yaml", str(plan)))
    result = runner.invoke(
        app,
        ["segments", "validate", str(plan), "--data", str(data_dir), "-e", str(exp), "--json",
         "--target-lift", "100"],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.stdout)
    assert doc["set"] == "exclusive"
    assert [s["name"] for s in doc["segments"]] == ["buyers", "mobile", "tiny", "rest"]
    assert set(doc["metrics"]) == {"conversion", "ctr", "revenue_per_user"}
    assert doc["segments"][0]["baseline"]["conversion"] is not None
    assert doc["coverage"] == pytest.approx(1.0)


def test_segments_show_counts_and_anonymised_profiles(data_dir):
    result = runner.invoke(
        app, ["segments", "show", str(data_dir / "plan.yaml"), "--data", str(data_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    by_name = {s["segment"]: s for s in doc["segments"]}
    assert by_name["tiny"]["users"] is None
    assert by_name["tiny"]["profiles"] == []
    profiles = by_name["mobile"]["profiles"]
    assert len(profiles) == 3
    assert all("user_id" not in p and p["device"] == "mobile" for p in profiles)
    table = runner.invoke(
        app, ["segments", "show", str(data_dir / "plan.yaml"), "--data", str(data_dir)]
    )
    assert table.exit_code == 0
    assert "< 150 (hidden)" in table.stdout
    assert "u0" not in table.stdout


def test_segments_fit_writes_the_sidecar(data_dir, tmp_path):
    plan = tmp_path / "models.yaml"
    plan.write_text(
        "segments:\n"
        "  - name: taste\n"
        "    cluster: {features: [orders_90d, days_since_last_login], k: 3}\n"
        "  - name: lapse\n"
        "    predict: {target: 'days_since_last_login >= 30', features: [orders_90d]}\n"
    )
    result = runner.invoke(app, ["segments", "fit", str(plan), "--data", str(data_dir)])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "models.models.json").read_text())
    assert set(doc["models"]) == {"taste", "lapse"}
    assert "held-out AUC" in result.stdout
    assert "k=3" in result.stdout


def test_analyze_withholds_segments_under_the_privacy_floor(data_dir, tmp_path):
    plan = tmp_path / "floor.yaml"
    plan.write_text(SEGMENTS)  # min_size 150: `tiny` (orders >= 5) is under it
    exp = tmp_path / "exp.yaml"
    exp.write_text((data_dir / "experiment.yaml").read_text().replace("segments.yaml", str(plan)))
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(data_dir), "-e", str(exp), "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    tiny = [r for r in doc["results"] if r["segment"] == "tiny"]
    assert tiny
    for row in tiny:
        assert row["suppressed"] is True
        for key in ("n_control", "n_treatment", "mean_control", "lift_abs", "p_value", "ci_low"):
            assert row[key] is None, key
    shown = [r for r in doc["results"] if r["segment"] == "buyers"]
    assert all(r["suppressed"] is False and r["n_control"] > 0 for r in shown)
    info = {s["name"]: s for s in doc["segments"]}
    assert info["tiny"]["users"] is None
    assert info["buyers"]["users"] > 150
    assert "segments: overlapping (each segment analysed on its own)" in doc["notes"]
    assert any("withheld (privacy floor)" in n for n in doc["notes"])


def test_segments_validate_says_no_mde_where_a_metric_has_no_spread(data_dir, tmp_path):
    # every "buyers" member has orders_90d >= 1: the proportion is 1 there, nothing to size
    # an MDE from; mobile users vary, so their MDE is a number and only the target decides
    plan = tmp_path / "ok.yaml"
    plan.write_text(SEGMENTS.replace("min_size: 150", "min_size: 10").split("  - name: tiny")[0])
    args = ["segments", "validate", str(plan), "--data", str(data_dir), "--json"]
    result = runner.invoke(app, [*args, "--metric", "buyer=orders_90d >= 1", "--target-lift", "2"])
    assert result.exit_code == 1, result.output
    by_name = {s["name"]: s for s in json.loads(result.stdout)["segments"]}
    assert by_name["buyers"]["mde_rel"]["buyer"] is None
    assert by_name["buyers"]["flags"] == ["NO_MDE"]
    assert by_name["mobile"]["mde_rel"]["buyer"] > 0
    assert by_name["mobile"]["flags"] == []
