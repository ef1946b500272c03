"""Opening a dataset on a real Spark session and a real PostgreSQL server.

The same tables as the Parquet folder, loaded into the engine under other names
(``crm.*``), must open with the same contract: the rows and columns the folder
has, integer ids as text, and one line for a missing table or column, a column of
the wrong type, or an empty table. (The analysis queries' own portability is
tested with the engine modules.)
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.engine.source import DataSource, open_source, open_source_pre_launch, opened
from experiment.errors import DataError
from experiment.tablenames import TableNames

pytestmark = [
    pytest.mark.engines,
    # PySpark 4.0's toPandas (which Ibis's Spark backend reads results through) passes
    # pandas 3 a deprecated keyword; not ours to fix (QRY's engine notes).
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:toPandas attempted Arrow optimization"),
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option is deprecated"),
]

ROLES = ("customers", "events", "assignments")
CRM = TableNames(customers="crm.customers", events="crm.events", assignments="crm.assignments")


def _tables(folder) -> dict[str, pa.Table]:
    return {t: pq.read_table(folder / f"{t}.parquet") for t in ROLES}


def _broken(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """Variants of the tables, each breaking the contract one way."""
    events = tables["events"]
    return {
        "events_no_ts": events.drop_columns(["ts"]),
        "events_int_event": events.set_column(
            events.schema.get_field_index("event"), "event", pa.array(range(len(events)))
        ),
        "assignments_empty": tables["assignments"].slice(0, 0),
    }


def _names(**changed: str) -> TableNames:
    return TableNames(**{**{r: f"crm.{r}" for r in ROLES}, **changed})


BREAKS = [
    (dict(events="crm.events_no_ts"), "table 'crm.events_no_ts' (events) lacks column(s) ts"),
    (dict(events="crm.events_int_event"), "column 'event': found int"),
    (dict(assignments="crm.assignments_empty"), "is empty (0 rows)"),
    (dict(customers="crm.nobody"), "table 'crm.nobody' (customers) not found"),
]


def _check_opened(source: DataSource, folder) -> None:
    """The engine's tables hold the folder's rows and columns."""
    with opened(source) as data:
        _compare(data, folder)


def _compare(data, folder) -> None:
    expected = _tables(folder)
    for role in ROLES:
        table = getattr(data, role)
        assert table.count().to_pyarrow().as_py() == expected[role].num_rows
        assert set(table.columns) == set(expected[role].column_names)
        assert table.user_id.type().is_string()
    ids = data.assignments.user_id.to_pyarrow().to_pylist()
    assert sorted(ids) == sorted(expected["assignments"]["user_id"].to_pylist())


# ------------------------------------------------------------------ Spark


@pytest.fixture(scope="module")
def spark_crm(spark_session, dataset_dir):
    """The dataset's tables (and broken variants) as Spark tables crm.*."""
    spark = spark_session
    spark.sql("CREATE DATABASE IF NOT EXISTS crm")
    tables = _tables(dataset_dir)
    for name, table in {**tables, **_broken(tables)}.items():
        if table.num_rows:
            frame = spark.createDataFrame(table.to_pandas())
        else:  # no rows to infer a schema from: the full table's
            frame = spark.createDataFrame([], spark.table(f"crm.{name.split('_')[0]}").schema)
        frame.write.mode("overwrite").saveAsTable(f"crm.{name}")
    return spark


def test_source_engines_spark_opens_named_tables_like_the_folder(spark_crm, dataset_dir):
    _check_opened(DataSource(engine="pyspark", tables=CRM), dataset_dir)


def test_source_engines_spark_reads_the_named_table_not_a_view_of_its_bare_name(
    spark_crm, dataset_dir
):
    # Ibis 12 alone would read crm.customers' schema from this view of the session
    spark_crm.createDataFrame([(1, 2.0)], ["other", "columns"]).createOrReplaceTempView("customers")
    try:
        _check_opened(DataSource(engine="pyspark", tables=CRM), dataset_dir)
    finally:
        spark_crm.catalog.dropTempView("customers")


@pytest.mark.parametrize(("changed", "phrase"), BREAKS)
def test_source_engines_spark_contract_breaks_are_one_line(spark_crm, changed, phrase):
    with pytest.raises(DataError, match=r"^pyspark: ") as err:
        open_source(DataSource(engine="pyspark", tables=_names(**changed)))
    assert phrase in str(err.value)
    assert "\n" not in str(err.value)


def test_source_engines_spark_pre_launch_without_assignments(spark_crm):
    names = _names(assignments="crm.never_assigned")
    data, has = open_source_pre_launch(DataSource(engine="pyspark", tables=names))
    assert not has
    assert (
        data.assignments.count().to_pyarrow().as_py() == data.customers.count().to_pyarrow().as_py()
    )


# ------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="module")
def postgres_crm(postgres_url, dataset_dir):
    """The dataset's tables (and broken variants) as PostgreSQL tables crm.*."""
    import ibis

    con = ibis.postgres.connect(
        host="127.0.0.1",
        port=int(postgres_url.rsplit(":", 1)[1].split("/")[0]),
        user=postgres_url.split("//")[1].split("@")[0],
        database=postgres_url.rsplit("/", 1)[1],
    )
    con.raw_sql("CREATE SCHEMA IF NOT EXISTS crm").close()
    tables = _tables(dataset_dir)
    for name, table in {**tables, **_broken(tables)}.items():
        con.create_table(name, table, database="crm", overwrite=True)
    con.disconnect()
    return postgres_url


def test_source_engines_postgres_opens_named_tables_like_the_folder(postgres_crm, dataset_dir):
    _check_opened(DataSource(engine=postgres_crm, tables=CRM), dataset_dir)


@pytest.mark.parametrize(("changed", "phrase"), BREAKS)
def test_source_engines_postgres_contract_breaks_are_one_line(postgres_crm, changed, phrase):
    with pytest.raises(DataError, match=r"^postgres://") as err:
        open_source(DataSource(engine=postgres_crm, tables=_names(**changed)))
    assert phrase in str(err.value)
    assert "\n" not in str(err.value)


def test_source_engines_postgres_wrong_password_is_hidden(postgres_crm):
    from experiment.errors import ConfigError

    user_at = postgres_crm.split("//")[1].split("@")[0]
    wrong = postgres_crm.replace(f"//{user_at}@", f"//{user_at}:hunter2@").replace(
        "/seglift_test", "/no_such_db"
    )
    with pytest.raises(ConfigError, match="cannot connect") as err:
        open_source(DataSource(engine=wrong, tables=CRM))
    assert "hunter2" not in str(err.value)
