"""Table files as exported by other tools: what DuckDB reads is exactly what the footers checked.

Polars' string columns, macOS's ``._`` copies and ``.PARQUET`` parts in a table
folder, dataset folders whose names hold glob characters, and column names that
differ only by case. Each result is compared with the same data in plain files
(the reference), never with a pinned output of ours.
"""

import os
import shutil
import threading

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from experiment.config import load_experiment
from experiment.engine import aggregate, open_dataset
from experiment.engine.schema import inspect_table, kind_of
from experiment.errors import DataError


@pytest.fixture
def data(tmp_path, dataset_dir):
    return shutil.copytree(dataset_dir, tmp_path / "data")


def _units(folder):
    config = load_experiment(folder / "experiment.yaml")
    cells = aggregate(open_dataset(folder), config, None)
    return cells.units.tolist(), {k: v.n.tolist() for k, v in cells.metrics.items()}


def _split(folder, table, n=3):
    """``table`` as a folder of ``n`` parts; the parts' folder."""
    t = pq.read_table(folder / f"{table}.parquet")
    (folder / f"{table}.parquet").unlink()
    parts = folder / table
    parts.mkdir()
    step = len(t) // n + 1
    for k in range(n):
        pq.write_table(t.slice(k * step, step), parts / f"part-{k}.parquet")
    return parts


def test_kind_of_string_view_is_text():  # Polars' strings, as the Arrow schema records them
    assert kind_of(pa.string_view()) == "text"


def test_string_view_columns_give_the_sums_of_plain_strings(data, tmp_path):
    expected = _units(data)
    for table in ("customers", "events", "assignments"):
        t = pq.read_table(data / f"{table}.parquet")
        views = [
            t[c].cast(pa.string_view()) if pa.types.is_string(t.schema.field(c).type) else t[c]
            for c in t.column_names
        ]
        pq.write_table(pa.table(views, names=t.column_names), data / f"{table}.parquet")
    assert pq.read_schema(data / "events.parquet").field("event").type == pa.string_view()
    assert _units(data) == expected


def test_hidden_and_upper_case_parts(data):
    expected = _units(data)
    parts = _split(data, "events")
    (parts / "part-1.parquet").rename(parts / "part-1.PARQUET")  # read, as every part
    (parts / "._part-0.parquet").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # skipped
    pq.write_table(pa.table({"x": [1]}), parts / "_temporary.parquet")  # skipped
    found = inspect_table(data, "events")
    assert found is not None
    assert [p.name for p in found.files] == ["part-0.parquet", "part-1.PARQUET", "part-2.parquet"]
    assert _units(data) == expected


@pytest.mark.parametrize("name", ["run[1]", "run*", "run?"])
@pytest.mark.parametrize("layout", ["files", "parts"])
def test_folder_names_with_glob_characters_read_their_own_files(
    tmp_path, dataset_dir, name, layout
):
    folder = shutil.copytree(dataset_dir, tmp_path / name)
    if layout == "parts":
        _split(folder, "events")
    expected = _units(folder)
    # a sibling the glob would match, holding a tenth of the events
    sibling = shutil.copytree(folder, tmp_path / "run1")
    for path in [sibling / "events.parquet", *sorted((sibling / "events").glob("*.parquet"))]:
        if path.exists():
            pq.write_table(pq.read_table(path).slice(0, 100), path)
    assert _units(folder) == expected


@pytest.mark.parametrize(
    ("table", "first", "phrase"),
    [
        ("customers", "user_id", "column 'user_id' appears twice"),
        ("events", "ts", "column 'ts' appears twice"),
        ("customers", "USER_ID", "column 'USER_ID' appears as 'USER_ID' and 'user_id'"),
        ("events", "TS", "column 'TS' appears as 'TS' and 'ts'"),
        ("customers", "DEVICE", "column 'DEVICE' appears as 'DEVICE' and 'device'"),
    ],
)
def test_column_names_equal_but_for_case_are_one_line(data, table, first, phrase):
    path = data / f"{table}.parquet"
    t = pq.read_table(path)
    copy = t[first.lower()]
    pq.write_table(pa.Table.from_arrays([copy, *t.columns], names=[first, *t.column_names]), path)
    with pytest.raises(DataError, match="differ other than by upper/lower case") as err:
        open_dataset(data)
    assert phrase in str(err.value)
    assert str(path) in str(err.value)


def test_a_part_without_a_column_of_the_first_is_one_line(data):
    parts = _split(data, "events")
    t = pq.read_table(parts / "part-2.parquet")
    pq.write_table(t.drop_columns(["ts"]), parts / "part-2.parquet")
    with pytest.raises(DataError, match=r"part-2.parquet: lacks column\(s\) 'ts' that part-0"):
        open_dataset(data)


def test_a_part_with_a_column_more_is_read(data):
    expected = _units(data)
    parts = _split(data, "events")
    t = pq.read_table(parts / "part-2.parquet")
    pq.write_table(
        t.append_column("extra", pc.cast(t["revenue"], pa.string())), parts / "part-2.parquet"
    )
    assert _units(data) == expected


def test_a_named_pipe_is_refused_before_any_read(data):
    path = data / "events.parquet"
    path.unlink()
    os.mkfifo(path)

    def writer():  # without the check, the footer read takes these bytes (or waits forever)
        with open(path, "wb") as out:
            out.write(b"not parquet")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    with pytest.raises(DataError, match=r"events.parquet: .* not a regular file \(a named pipe"):
        inspect_table(data, "events")
    with open(path, "rb") as pipe:  # let the writer finish
        pipe.read()
    thread.join()


def test_a_device_is_refused(data):
    (data / "customers.parquet").unlink()
    (data / "customers.parquet").symlink_to(os.devnull)
    with pytest.raises(DataError, match=r"customers\.parquet: .*not a regular file"):
        open_dataset(data)
