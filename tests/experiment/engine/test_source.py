"""One way to open data: a Parquet folder or an engine URL with named tables (DuckDB file here).

The engine path must give exactly what the folder gives (the folder run is the
reference), and break the same promises the same way: one line naming the
engine table for a missing table or column, a wrong type, an empty table.
"""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from typer.testing import CliRunner

from experiment.api import analyze
from experiment.cli import app
from experiment.config import ExperimentConfig, load_experiment
from experiment.engine.connection import engine_kind, redact
from experiment.engine.source import (
    DataSource,
    first_assignment,
    open_source,
    open_source_customers,
    open_source_pre_launch,
    resolve_source,
)
from experiment.errors import ConfigError, DataError
from experiment.tablenames import TableNames, split_table_name, table_names
from tests.fixtures.cli import assert_one_line_error

runner = CliRunner()
ROLES = ("customers", "events", "assignments")
CRM = TableNames(customers="crm.customers", events="crm.events", assignments="crm.assignments")


def _load_duckdb(folder, db, *, schema="crm", edit=None):
    """The folder's three Parquet tables copied into a DuckDB file, in ``schema``."""
    con = duckdb.connect(str(db))
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for t in ROLES:
            con.execute(
                f"CREATE TABLE {schema}.{t} AS SELECT * FROM read_parquet(?)",
                [str(folder / f"{t}.parquet")],
            )
        if edit is not None:
            con.execute(edit)
    finally:
        con.close()
    return db


@pytest.fixture(scope="module")
def warehouse(dataset_dir, tmp_path_factory):
    """A DuckDB file holding the dataset's tables as crm.customers, crm.events, ..."""
    return _load_duckdb(dataset_dir, tmp_path_factory.mktemp("wh") / "shop.db")


def _source(db, names=CRM):
    return DataSource(engine=f"duckdb://{db}", tables=names)


def test_source_duckdb_file_analysis_equals_the_folder(dataset_dir, warehouse):
    experiment = dataset_dir / "experiment.yaml"
    reference = analyze(dataset_dir, experiment).to_json()
    assert analyze(_source(warehouse), experiment).to_json() == reference


def test_source_cli_engine_and_tables_from_the_experiment_file_match_the_folder(
    dataset_dir, warehouse, tmp_path
):
    text = (dataset_dir / "experiment.yaml").read_text()
    tables = "tables: {customers: crm.customers, events: crm.events, assignments: crm.assignments}"
    shutil.copy(dataset_dir / "segments.yaml", tmp_path / "segments.yaml")
    on_engine = tmp_path / "experiment.yaml"
    on_engine.write_text(f"{text}engine: duckdb://{warehouse}\n{tables}\n")
    folder_run = runner.invoke(
        app, ["analyze", str(dataset_dir), "-e", str(on_engine), "--out", str(tmp_path / "a")]
    )
    engine_run = runner.invoke(app, ["analyze", "-e", str(on_engine), "--out", str(tmp_path / "b")])
    assert folder_run.exit_code == 0, folder_run.output
    assert engine_run.exit_code == 0, engine_run.output
    a = json.loads((tmp_path / "a/results.json").read_text())
    b = json.loads((tmp_path / "b/results.json").read_text())
    assert a == b


def test_source_cli_engine_option_and_table_options(dataset_dir, warehouse, tmp_path):
    argv = ["analyze", "-e", str(dataset_dir / "experiment.yaml"), "--out", str(tmp_path / "o")]
    argv += ["--engine", f"duckdb://{warehouse}"]
    argv += [f"--table={r}=crm.{r}" for r in ROLES]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    reference = analyze(dataset_dir, dataset_dir / "experiment.yaml").to_json_dict()
    assert json.loads((tmp_path / "o/results.json").read_text()) == json.loads(
        json.dumps(reference)
    )


def test_source_power_and_segments_on_an_engine_match_the_folder(dataset_dir, warehouse):
    from experiment.api import plan_power, show_segments, validate_segments

    experiment = dataset_dir / "experiment.yaml"
    segments = dataset_dir / "segments.yaml"
    src = _source(warehouse)
    assert (
        plan_power(src, experiment).to_json_dict()
        == plan_power(dataset_dir, experiment).to_json_dict()
    )
    assert show_segments(segments, src) == show_segments(segments, dataset_dir)
    on_engine = validate_segments(segments, src, experiment=experiment).to_dict()
    assert on_engine == validate_segments(segments, dataset_dir, experiment=experiment).to_dict()
    assert first_assignment(src) == first_assignment(dataset_dir)


def test_source_pre_launch_engine_without_assignments(dataset_dir, tmp_path):
    db = _load_duckdb(dataset_dir, tmp_path / "x.db", edit="DROP TABLE crm.assignments")
    data, has = open_source_pre_launch(_source(db))
    assert not has
    assert (
        data.assignments.count().to_pyarrow().as_py() == data.customers.count().to_pyarrow().as_py()
    )
    assert first_assignment(_source(db)) is None


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [
        ("DROP TABLE crm.events", "table 'crm.events' (events) not found"),
        ("ALTER TABLE crm.events DROP COLUMN ts", "(events) lacks column(s) ts"),
        ("ALTER TABLE crm.events ALTER event TYPE INTEGER USING 1", "column 'event': found int"),
        ("DELETE FROM crm.assignments", "(assignments) is empty (0 rows)"),
        (
            "ALTER TABLE crm.customers ALTER user_id TYPE BIGINT USING 1",
            "column 'user_id' has different types across tables",
        ),
    ],
)
def test_source_engine_contract_breaks_are_one_line(dataset_dir, tmp_path, edit, phrase):
    db = _load_duckdb(dataset_dir, tmp_path / "x.db", edit=edit)
    with pytest.raises(DataError, match="duckdb://") as err:
        open_source(_source(db))
    assert phrase in str(err.value)
    assert "\n" not in str(err.value)


def test_source_engine_integer_ids_are_compared_as_text(dataset_dir, tmp_path):
    edits = "; ".join(
        f"ALTER TABLE crm.{t} ALTER user_id TYPE BIGINT USING hash(user_id) % 1000000000"
        for t in ROLES
    )
    db = _load_duckdb(dataset_dir, tmp_path / "x.db", edit=edits)
    data = open_source(_source(db))
    assert data.customers.user_id.type().is_string()
    assert open_source_customers(_source(db)).user_id.type().is_string()


def test_source_memory_limit_applies_to_duckdb_files_only(warehouse):
    data = open_source(_source(warehouse), memory_limit="1GB")
    limit = data.con.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit.replace(" ", "").upper() in ("1GB", "953.6MIB")
    with pytest.raises(ConfigError, match="applies to DuckDB only"):
        open_source(DataSource(engine="postgres://u:pw@127.0.0.1:1/db"), memory_limit="1GB")


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("mysql://u@h/db", "unknown engine 'mysql'"),
        ("", "empty"),
        ("duckdb://", "name the database file"),
        ("duckdb:///nowhere/x.db", "not found"),
        ("postgres://u@h", "expected postgres://user@host:port/database"),
        ("postgres://u@h:port/db", "the port must be a number"),
        ("pyspark://x", "write just 'pyspark'"),
    ],
)
def test_source_bad_engine_url_is_one_config_error(url, phrase):
    with pytest.raises(ConfigError, match="--engine") as err:
        open_source(DataSource(engine=url) if url else resolve_source(None, engine=url))
    assert phrase in str(err.value)


def test_source_spark_connect_unreachable_or_missing_client_is_one_line():
    with pytest.raises(ConfigError, match="--engine 'sc://") as err:
        open_source(DataSource(engine="sc://127.0.0.1:1"))
    assert "not installed" in str(err.value) or "cannot connect" in str(err.value)


def test_source_password_never_shown():
    assert redact("postgres://ana:s3cret@db:5432/shop") == "postgres://ana:***@db:5432/shop"
    assert "s3cret" not in redact("postgres://ana:s3cret@db:notaport/shop")
    with pytest.raises(ConfigError) as err:  # nothing listens on port 1
        open_source(DataSource(engine="postgres://ana:s3cret@127.0.0.1:1/shop"))
    assert "s3cret" not in str(err.value)
    assert "ana:***@" in str(err.value)


@pytest.mark.parametrize(
    "name", ["a;drop table x", "crm.", ".x", "1abc", "a.b.c.d", "a b", "a-b", "x'y", ""]
)
def test_source_bad_table_names_are_rejected(name):
    with pytest.raises(ValueError, match="not a dotted identifier"):
        table_names({"customers": name})
    with pytest.raises(ConfigError, match="--table"):
        resolve_source(None, engine="pyspark", tables={"customers": name})


def test_source_table_names_split_for_ibis():
    assert split_table_name("customers") == ("customers", None)
    assert split_table_name("crm.customers") == ("customers", "crm")
    assert split_table_name("cat.crm.customers") == ("customers", ("cat", "crm"))
    with pytest.raises(ValueError, match="unknown table 'users'"):
        table_names({"users": "crm.users"})


def _config(**fields):
    metrics = [{"name": "c", "kind": "proportion", "event": "purchase"}]
    return ExperimentConfig.model_validate({"name": "x", "metrics": metrics, **fields})


def test_source_resolution_order(tmp_path):
    config = _config(engine="pyspark", tables={"customers": "crm.customers"})
    assert resolve_source(tmp_path).folder == tmp_path
    assert resolve_source(tmp_path, config=config).folder == tmp_path  # DATASET wins
    from_file = resolve_source(None, config=config, tables={"events": "web.events"})
    assert from_file.engine == "pyspark"
    assert (from_file.tables.customers, from_file.tables.events) == ("crm.customers", "web.events")
    overridden = resolve_source(None, engine="duckdb:///x.db", config=config)
    assert overridden.engine == "duckdb:///x.db"
    assert overridden.tables.customers == "crm.customers"
    with pytest.raises(ConfigError, match="not both"):
        resolve_source(tmp_path, engine="pyspark")
    with pytest.raises(ConfigError, match="no data"):
        resolve_source(None, config=_config())
    with pytest.raises(ConfigError, match="--table names tables in an engine"):
        resolve_source(tmp_path, tables={"customers": "crm.customers"})


def test_source_experiment_file_fields_are_checked(tmp_path):
    base = "name: x\nmetrics: [{name: c, kind: proportion, event: purchase}]\n"
    cases = [
        ("engine: mysql://root:hunter2@h/db\n", "field 'engine': expected an engine URL"),
        ("tables: {customers: 'crm.customers; drop'}\n", "not a dotted identifier"),
        ("tables: {users: crm.users}\n", "unknown table 'users'"),
    ]
    for extra, phrase in cases:
        path = tmp_path / "e.yaml"
        path.write_text(base + extra)
        with pytest.raises(ConfigError) as err:
            load_experiment(path)
        assert phrase in str(err.value)
        assert "hunter2" not in str(err.value)
    assert engine_kind("postgresql://u@h/db") == "postgres"


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["--engine", "mysql://u:pw@h/db"], "unknown engine 'mysql'"),
        (["--engine", "postgres://u:pw@127.0.0.1:1/db", "--memory-limit", "1GB"], "DuckDB only"),
        (["--table", "customers"], "--table: 'customers': write ROLE=NAME"),
        (["--engine", "pyspark", "--table", "customers=a;b"], "not a dotted identifier"),
    ],
)
def test_source_cli_bad_engine_input_is_one_line(dataset_dir, tmp_path, argv, phrase):
    out = tmp_path / "o"
    base = ["analyze", "-e", str(dataset_dir / "experiment.yaml"), "--out", str(out)]
    result = runner.invoke(app, [*base, *argv])
    assert_one_line_error(result, phrase)
    assert "pw@" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["power"],
        ["refine", "--out", "{tmp}/p.yaml"],
        ["segments", "validate", "{data}/segments.yaml"],
        ["segments", "show", "{data}/segments.yaml"],
    ],
)
def test_source_every_command_takes_engine(dataset_dir, warehouse, tmp_path, argv):
    args = [a.format(tmp=tmp_path, data=dataset_dir) for a in argv]
    if argv[0] in ("power", "refine"):
        args += ["-e", str(dataset_dir / "experiment.yaml")]
    args += ["--engine", f"duckdb://{warehouse}", *[f"--table={r}=crm.{r}" for r in ROLES]]
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1), result.output  # validate exits 1 on a failed check
    assert "error" not in result.stderr


def test_source_table_names_are_checked_when_built_in_python():
    with pytest.raises(ValueError, match="not a dotted identifier"):
        TableNames(events="web.events; DROP TABLE x")
