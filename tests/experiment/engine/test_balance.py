"""The engine's balance sums: which covariates, and their moments against pandas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiment.config import load_experiment
from experiment.engine import aggregate, open_dataset
from segments import load_segments
from tests.fixtures.dataset import EXPERIMENT_YAML, per_user_reference, write_dataset

CUPED_EXPERIMENT = EXPERIMENT_YAML.replace(
    "value: revenue}", "value: revenue, cuped: days_since_last_login}"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_dataset(tmp_path_factory.mktemp("balance"), rng=4)
    (folder / "cuped.yaml").write_text(CUPED_EXPERIMENT)
    return folder


def _cells(folder: Path, experiment: str):
    config = load_experiment(folder / experiment)
    assert config.segments is not None
    return aggregate(open_dataset(folder), config, load_segments(config.segments))


def test_covariates_are_cuped_columns_then_numeric_rule_columns(folder):
    # device is a string (rule column, skipped); the CUPED covariate comes first
    assert tuple(_cells(folder, "experiment.yaml").balance) == (
        "orders_90d",
        "days_since_last_login",
    )
    assert tuple(_cells(folder, "cuped.yaml").balance) == (
        "days_since_last_login",
        "orders_90d",
    )


@pytest.mark.parametrize("experiment", ["experiment.yaml", "cuped.yaml"])
def test_moments_per_segment_and_arm_match_pandas(folder, experiment):
    cells = _cells(folder, experiment)
    ref = per_user_reference(folder)
    ref["orders_90d"] = ref["orders_90d"].fillna(0.0)  # missing history counts 0, as CUPED's
    for si, segment in enumerate(cells.segments):
        for j, arm in enumerate(cells.arms):
            users = ref[ref[f"seg_{segment}"] & (ref.arm == arm)]
            for name, sums in cells.balance.items():
                values = users[name].to_numpy(dtype=float)
                assert sums.n[si, j] == len(values)
                assert sums.mean[si, j] == pytest.approx(values.mean(), rel=1e-12)
                assert sums.m2[si, j] == pytest.approx(
                    ((values - values.mean()) ** 2).sum(), rel=1e-9
                )


def test_cuped_covariate_balance_is_the_metrics_x_margin(folder):
    cells = _cells(folder, "cuped.yaml")
    x = cells.cuped["revenue_per_user"].x
    sums = cells.balance["days_since_last_login"]
    for part in ("n", "mean", "m2"):
        np.testing.assert_array_equal(getattr(sums, part), getattr(x, part))
