"""`exp analyze` end to end on Parquet with a planted imbalance: flagged, shown, not shipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from experiment.cli import app
from experiment.results import load_results
from experiment.results.decision import decisions
from tests.fixtures.dataset import write_dataset

runner = CliRunner()


def _analyze(folder: Path, out: Path) -> tuple[str, dict[str, Any]]:
    result = runner.invoke(
        app, ["analyze", str(folder), "-e", str(folder / "experiment.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return result.output, json.loads((out / "results.json").read_text())


def _shift_treatment(folder: Path, column: str, by: float) -> None:
    """Raise one covariate of the treatment arm's customers by ``by``."""
    assignments = pq.read_table(folder / "assignments.parquet")
    mine = assignments.filter(pc.equal(assignments["experiment"], "exp1"))
    treated = set(mine.filter(pc.equal(mine["arm"], "treatment"))["user_id"].to_pylist())
    customers = pq.read_table(folder / "customers.parquet")
    is_treated = np.array([u in treated for u in customers["user_id"].to_pylist()])
    values = customers[column].to_numpy(zero_copy_only=False).astype(float)
    moved = pa.array(np.where(is_treated, values + by, values), from_pandas=True)
    index = customers.schema.get_field_index(column)
    pq.write_table(customers.set_column(index, column, moved), folder / "customers.parquet")


def _wrong_key(folder: Path, share: float) -> None:
    """A share of the treatment rows carry another key (a legacy, upper-case id)."""
    table = pq.read_table(folder / "assignments.parquet")
    rng = np.random.default_rng(1)
    ids = table["user_id"].to_pylist()
    arms = table["arm"].to_pylist()
    exps = table["experiment"].to_pylist()
    wrong = [
        u.upper() if e == "exp1" and a == "treatment" and rng.random() < share else u
        for u, a, e in zip(ids, arms, exps, strict=True)
    ]
    index = table.schema.get_field_index("user_id")
    pq.write_table(
        table.set_column(index, "user_id", pa.array(wrong)), folder / "assignments.parquet"
    )


def test_clean_data_passes_the_check(tmp_path):
    folder = write_dataset(tmp_path / "data", rng=2)
    output, doc = _analyze(folder, tmp_path / "out")
    assert "balance check passed" in output
    assert doc["balance"]["flag"] is False
    assert doc["balance"]["covariates"] == ["orders_90d", "days_since_last_login"]
    assert doc["balance"]["tests"] == 8  # 2 covariates x 4 segments x 1 treatment arm


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda f: _shift_treatment(f, "orders_90d", 0.3), id="covariate-shifted"),
        pytest.param(lambda f: _wrong_key(f, 0.2), id="wrong-key-join"),
    ],
)
def test_a_planted_imbalance_is_flagged_shown_and_not_shipped(tmp_path, plant):
    folder = write_dataset(tmp_path / "data", rng=2)
    plant(folder)
    output, doc = _analyze(folder, tmp_path / "out")
    assert doc["balance"]["flag"] is True
    assert any(s["segment"] == "all" and s["flag"] for s in doc["balance"]["segments"])
    worst = doc["balance"]["worst"][0]
    assert worst["flag"] is True
    assert worst["p_adjusted"] < 0.001
    flat = " ".join(output.split())
    # on top, right under the SRM line, above the tables
    assert flat.index("SRM") < flat.index("balance check FAILED") < flat.index("lift vs control")
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'id="balance-banner"' in page
    made = decisions(load_results(tmp_path / "out" / "results.json"))
    assert {d.kind for d in made} <= {"keep testing", "don't ship", "no data", "below minimum size"}
    assert any("covariate imbalance" in d.reason for d in made)


def test_from_sums_keeps_the_check(tmp_path):
    folder = write_dataset(tmp_path / "data", rng=2)
    _shift_treatment(folder, "orders_90d", 0.3)
    args = ["analyze", str(folder), "-e", str(folder / "experiment.yaml")]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--save-sums"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(
        app,
        [
            "analyze",
            "--from-sums",
            str(tmp_path / "a" / "sums.parquet"),
            "-e",
            str(folder / "experiment.yaml"),
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert again.exit_code == 0, again.output
    a = json.loads((tmp_path / "a" / "results.json").read_text())["balance"]
    b = json.loads((tmp_path / "b" / "results.json").read_text())["balance"]
    assert a == b
    assert b["flag"] is True


def test_the_python_api_exposes_the_check(tmp_path):
    import experiment

    folder = write_dataset(tmp_path / "data", rng=2)
    _shift_treatment(folder, "days_since_last_login", 6.0)
    results = experiment.analyze(folder, folder / "experiment.yaml")
    assert results.balance.flag
    assert results.balance.worst[0].covariate == "days_since_last_login"
    assert results.balance.worst[0].smd > 0
    assert "covariate IMBALANCE" in repr(results)
    assert set(results.to_pandas()["decision"]) <= {"keep testing", "don't ship", "no data"}
