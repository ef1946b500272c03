"""Segments beyond one bit mask (62 per ``int64``) against pandas: counts, sums, timeline.

The per-user table holds segment memberships as bits of ``int64`` masks; a rule
whose bit sits in the second or third mask must count the same users as the rule
evaluated by pandas on the raw customers, in the final analysis and on the last
day of the sequential timeline.
"""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from experiment.engine.users import mask_names, segment_bit
from experiment.sums import MeanSums
from segments import load_segments
from tests.fixtures.dataset import EXPERIMENT_YAML, per_user_reference

# 130 rules: three masks (62 + 62 + 6 bits); each a threshold the pandas side repeats
RULES = [(f"login_ge_{k}", "days_since_last_login", k) for k in range(60)]
RULES += [(f"login_lt_{k}", "days_since_last_login", -k) for k in range(1, 61)]
RULES += [(f"orders_ge_{k}", "orders_90d", k) for k in range(10)]


def _rule(column: str, k: int) -> str:
    return f"{column} >= {k}" if k >= 0 or column != "days_since_last_login" else f"{column} < {-k}"


def _expected(df, column: str, k: int):
    """The pandas twin of :func:`_rule` (a null value is no member)."""
    values = df[column]
    hit = values >= k if k >= 0 or column != "days_since_last_login" else values < -k
    return hit.fillna(False).astype(bool)


@pytest.fixture(scope="module")
def folder(dataset_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("masks")
    for name in ("events.parquet", "assignments.parquet", "customers.parquet"):
        shutil.copy(dataset_dir / name, out / name)
    lines = ["segments:"]
    lines += [f'  - {{name: {name}, where: "{_rule(col, k)}"}}' for name, col, k in RULES]
    (out / "segments.yaml").write_text("\n".join(lines) + "\n")
    (out / "experiment.yaml").write_text(EXPERIMENT_YAML)
    (out / "experiment-seq.yaml").write_text(EXPERIMENT_YAML + "sequential: true\n")
    return out


def test_three_masks_are_named_and_bits_wrap():
    assert mask_names(131) == ["__mask0__", "__mask1__", "__mask2__"]
    assert mask_names(63) == ["__mask0__"]
    assert mask_names(1) == []
    assert segment_bit(62) == ("__mask0__", 61)
    assert segment_bit(63) == ("__mask1__", 0)


@pytest.mark.parametrize("sequential", [False, True])
def test_every_segment_counts_the_users_pandas_counts(folder, sequential):
    config = load_experiment(folder / ("experiment-seq.yaml" if sequential else "experiment.yaml"))
    assert config.segments is not None
    cells = aggregate(open_dataset(folder), config, load_segments(config.segments))
    df = per_user_reference(folder)
    arms = list(config.arms)
    assert cells.segments == ("all", *(name for name, _, _ in RULES))
    expected_n = np.array(
        [[(df.arm == arm).sum() for arm in arms]]
        + [[(_expected(df, col, k) & (df.arm == arm)).sum() for arm in arms] for _, col, k in RULES]
    )
    expected_buyers = np.array(
        [[df.conversion[df.arm == arm].sum() for arm in arms]]
        + [
            [df.conversion[_expected(df, col, k) & (df.arm == arm)].sum() for arm in arms]
            for _, col, k in RULES
        ]
    )
    beyond = expected_n[63:].sum(axis=1)  # segments of the second and third masks
    assert (beyond > 0).sum() >= 60
    assert (beyond < expected_n[0].sum()).sum() >= 60
    np.testing.assert_array_equal(cells.units, expected_n)
    conversion = cells.metrics["conversion"]
    assert isinstance(conversion, MeanSums)
    buyers = np.nan_to_num(conversion.mean * conversion.n)  # an empty cell: mean nan
    np.testing.assert_allclose(buyers, expected_buyers, atol=1e-9)
    if sequential:  # the last day of the timeline holds every user, as the final analysis
        last = cells.timeline[-1][1]
        np.testing.assert_array_equal(last.units, expected_n)


def test_duplicated_customers_are_left_out_of_every_segment(folder, tmp_path):
    """A customer id with two rows is not analysed (its masks are one row's); the rest count."""
    for name in ("events.parquet", "assignments.parquet", "segments.yaml", "experiment.yaml"):
        shutil.copy(folder / name, tmp_path / name)
    customers = pq.read_table(folder / "customers.parquet")
    twice = customers.slice(0, 5)
    pq.write_table(pa.concat_tables([customers, twice]), tmp_path / "customers.parquet")
    config = load_experiment(tmp_path / "experiment.yaml")
    assert config.segments is not None
    cells = aggregate(open_dataset(tmp_path), config, load_segments(config.segments))
    df = per_user_reference(folder)
    df = df[~df.index.isin(twice.column("user_id").to_pylist())]
    arms = list(config.arms)
    expected = np.array(
        [[(_expected(df, col, k) & (df.arm == arm)).sum() for arm in arms] for _, col, k in RULES]
    )
    np.testing.assert_array_equal(cells.units[1:], expected)
