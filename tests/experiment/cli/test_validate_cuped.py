"""`exp segments validate`: MDEs shrink with CUPED by the measured variance reduction."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.cli import assert_one_line_error

runner = CliRunner()

SEGMENTS = """\
segments:
  - {name: big, where: "size >= 2"}
  - {name: small, where: "size < 2"}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("cuped_validate")
    rng = np.random.default_rng(8)
    n = 4000
    prev = rng.gamma(2.0, 10.0, n)
    size = rng.integers(0, 4, n)
    strength = np.where(size >= 2, 0.9, 0.3)  # a different ρ per segment
    now = strength * prev + rng.normal(0, 8, n) + 5
    pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "size": size,
            "spend_now": now,
            "spend_prev": prev,
            "flat": np.ones(n),
        }
    ).to_parquet(out / "customers.parquet")
    (out / "segments.yaml").write_text(SEGMENTS)
    return out


def _validate(folder, *extra):
    args = ["segments", "validate", str(folder / "segments.yaml"), "--data", str(folder)]
    result = runner.invoke(app, [*args, "-m", "spend=spend_now", *extra, "--json"])
    assert result.exit_code in (0, 1), result.output
    return {s["name"]: s for s in json.loads(result.stdout)["segments"]}


def test_validate_mde_shrinks_by_the_measured_cuped_reduction(folder):
    plain = _validate(folder)
    cuped = _validate(folder, "--cuped", "spend=spend_prev")
    df = pd.read_parquet(folder / "customers.parquet")
    for name, members in (("big", df["size"] >= 2), ("small", df["size"] < 2)):
        d = df[members]
        rho2 = np.corrcoef(d.spend_now, d.spend_prev)[0, 1] ** 2  # independent of the engine
        got = cuped[name]["cuped_variance_reduction"]["spend"]
        assert got == pytest.approx(rho2, rel=1e-9)
        ratio = cuped[name]["mde_rel"]["spend"] / plain[name]["mde_rel"]["spend"]
        assert ratio == pytest.approx(np.sqrt(1 - rho2), rel=1e-9)
        assert plain[name]["cuped_variance_reduction"] == {}
    assert cuped["big"]["cuped_variance_reduction"]["spend"] > 0.5


def test_a_constant_covariate_removes_nothing(folder):
    plain, flat = _validate(folder), _validate(folder, "--cuped", "spend=flat")
    assert flat["big"]["mde_rel"] == plain["big"]["mde_rel"]
    assert flat["big"]["cuped_variance_reduction"]["spend"] == 0.0


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (["--cuped", "other=spend_prev"], "'other' is not a --metric"),
        (["--cuped", "spend=nope"], "nope"),
    ],
)
def test_bad_cuped_is_one_line_exit_2(folder, extra, phrase):
    args = ["segments", "validate", str(folder / "segments.yaml"), "--data", str(folder)]
    result = runner.invoke(app, [*args, "-m", "spend=spend_now", *extra])
    assert_one_line_error(result, phrase)
