"""The data contract checked at the Parquet footers, and the casts it allows."""

import decimal
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.config import load_experiment
from experiment.engine import aggregate, open_dataset
from experiment.engine.schema import CONTRACT, check_columns, inspect_table, kind_of
from experiment.errors import DataError
from tests.fixtures.dataset import write_dataset


@pytest.fixture
def data(tmp_path, dataset_dir):
    return shutil.copytree(dataset_dir, tmp_path / "data")


def _cells(folder):
    return aggregate(open_dataset(folder), load_experiment(folder / "experiment.yaml"), None)


@pytest.mark.parametrize(
    ("dtype", "kind"),
    [
        (pa.string(), "text"),
        (pa.large_string(), "text"),
        (pa.dictionary(pa.int32(), pa.string()), "text"),
        (pa.int64(), "id"),
        (pa.uint8(), "id"),
        (pa.timestamp("ns"), "timestamp"),
        (pa.timestamp("us", tz="Europe/Paris"), "timestamp"),
        (pa.float32(), "number"),
        (pa.decimal128(10, 2), "number"),
        (pa.bool_(), None),
        (pa.date32(), None),
        (pa.binary(), None),
    ],
)
def test_kind_of_arrow_types(dtype, kind):
    assert kind_of(dtype) == kind


def test_inspect_table_counts_rows_over_every_part(data):
    t = pq.read_table(data / "events.parquet")
    (data / "events.parquet").unlink()
    (data / "events").mkdir()
    step = len(t) // 3 + 1
    for k in range(3):
        pq.write_table(t.slice(k * step, step), data / "events" / f"part-{k}.parquet")
    found = inspect_table(data, "events")
    assert found is not None
    assert found.rows == len(t)
    assert [p.name for p in found.files] == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert found.source.endswith("events/*.parquet")
    assert inspect_table(data, "nothing") is None


def test_check_columns_names_file_column_found_and_expected(data):
    pq.write_table(pa.table({"user_id": [1.5], "ts": ["2026-01-01"], "event": ["x"]}),
                   data / "events.parquet")  # fmt: skip
    found = inspect_table(data, "events")
    assert found is not None
    with pytest.raises(DataError, match=r"events.parquet: table 'events': column 'user_id': "
                       r"found double, expected string or integer"):  # fmt: skip
        check_columns(found, CONTRACT["events"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_permission_denied(data):
    (data / "events.parquet").chmod(0)
    with pytest.raises(
        DataError, match=r"events\.parquet: cannot read as Parquet: permission denied"
    ):
        open_dataset(data)


def test_integer_user_ids_in_every_table_give_the_same_sums(tmp_path, dataset_dir):
    """Integer ids are compared as text: the same users, the same cells as text ids."""
    folder = shutil.copytree(dataset_dir, tmp_path / "ints")
    for name in ("customers", "events", "assignments"):
        t = pq.read_table(folder / f"{name}.parquet")
        ids = pa.array([int(u[1:]) for u in t["user_id"].to_pylist()], pa.int64())
        pq.write_table(t.set_column(t.column_names.index("user_id"), "user_id", ids),
                       folder / f"{name}.parquet")  # fmt: skip
    ref, got = _cells(dataset_dir), _cells(folder)
    np.testing.assert_array_equal(got.units, ref.units)
    for name, sums in ref.metrics.items():
        for field, want in vars(sums).items():
            have = vars(got.metrics[name])[field]
            np.testing.assert_allclose(have, want, rtol=1e-9, equal_nan=True)


def test_decimal_revenue_is_cast_like_float(tmp_path):
    folder = write_dataset(tmp_path / "d", n_users=300, n_events=3000, rng=3)
    ref = _cells(folder).metrics["revenue_per_user"]
    t = pq.read_table(folder / "events.parquet")
    values = [None if v is None else decimal.Decimal(f"{v:.2f}") for v in t["revenue"].to_pylist()]
    rounded = [None if v is None else float(v) for v in values]
    t2 = t.set_column(3, "revenue", pa.array(values, pa.decimal128(12, 2)))
    pq.write_table(t2, folder / "events.parquet")
    got = _cells(folder).metrics["revenue_per_user"]
    pq.write_table(t.set_column(3, "revenue", pa.array(rounded)), folder / "events.parquet")
    want = _cells(folder).metrics["revenue_per_user"]
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    assert not np.allclose(ref.n, 0)
