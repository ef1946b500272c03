"""The Python API's arguments: what a notebook passes by mistake is one ConfigError line.

Never a raw ``TypeError`` from pathlib, an ``AttributeError``, or a DuckDB binder
error; numbers are held to the bounds the CLI's options have.
"""

import datetime as dt
import shutil

import pyarrow.parquet as pq
import pytest

import experiment
from experiment.assignment import AssignmentSpec
from experiment.config import load_experiment
from experiment.engine.dataset import Dataset
from experiment.engine.source import DataSource, open_source
from experiment.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def folder(tmp_path_factory, dataset_dir):
    return shutil.copytree(dataset_dir, tmp_path_factory.mktemp("api_args") / "data")


@pytest.fixture(scope="module")
def exp(folder):
    return folder / "experiment.yaml"


@pytest.mark.parametrize(
    ("dataset", "phrase"),
    [
        (None, "not NoneType None"),
        (5, "not int 5"),
        (b"data", "not bytes b'data'"),
        ("", "not str ''"),
        (["data"], "not list"),
        ({"customers": "c.parquet"}, "not dict"),
    ],
)
def test_analyze_dataset_of_another_type(exp, dataset, phrase):
    with pytest.raises(ConfigError, match=r"^dataset: expected a dataset folder") as err:
        experiment.analyze(dataset, exp)
    assert phrase in str(err.value)


def test_analyze_a_pandas_frame_is_not_a_dataset(folder, exp):
    frame = pq.read_table(folder / "events.parquet").to_pandas()
    with pytest.raises(ConfigError, match="not DataFrame"):
        experiment.analyze(frame, exp)


def test_analyze_an_ibis_connection_is_not_a_dataset(exp):
    import ibis

    with pytest.raises(ConfigError, match="not Backend"):
        experiment.analyze(ibis.duckdb.connect(), exp)


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (None, "not NoneType None"),
        ({"name": "exp1", "salt": "s"}, "not dict"),
        (3, "not int 3"),
        ("name: exp1\nsalt: s\n" * 5, "a str of 95 characters on 11 line(s)"),
    ],
)
def test_analyze_experiment_of_another_type(folder, value, phrase):
    with pytest.raises(ConfigError, match=r"^experiment: expected the experiment YAML") as err:
        experiment.analyze(folder, value)
    assert phrase in str(err.value)


def test_segments_and_sums_of_another_type(folder, exp):
    with pytest.raises(ConfigError, match=r"^segments: expected the segments YAML"):
        experiment.analyze(folder, exp, segments={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^segments: .* not NoneType None"):
        experiment.validate_segments(None, folder)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^sums: expected a sums.parquet path"):
        experiment.analyze_sums(None, exp)  # type: ignore[arg-type]


def test_memory_limit_must_be_text(folder, exp):
    with pytest.raises(ConfigError, match="expected a size as text"):
        experiment.compute_sums(folder, exp, memory_limit=4_000_000_000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"lift": "0.05"}, "lift: expected a number from 1e-06 to 100, not str '0.05'"),
        ({"lift": 0}, "lift: expected a number"),
        ({"lift": float("nan")}, "lift: expected a number"),
        ({"power": 1.5}, "power: expected a number from 0.5 to 0.999"),
        ({"days": 0}, "days: expected an integer from 1 to 3650, not int 0"),
        ({"days": -3}, "days: expected an integer"),
        ({"days": 1.5}, "days: expected an integer"),
        ({"days": True}, "days: expected an integer"),
        ({"users_per_day": -5}, "users_per_day: expected a number from 1e-09"),
        ({"users_per_day": float("inf")}, "users_per_day: expected a number"),
        ({"users_per_day": 1e11}, "users_per_day: expected a number from 1e-09 to 1e+10"),
        ({"traffic": "weekly"}, "traffic: expected 'base', 'daily' or None"),
    ],
)
def test_plan_power_options_out_of_bounds(folder, exp, options, phrase):
    with pytest.raises(ConfigError, match="expected") as err:
        experiment.plan_power(folder, exp, **options)
    assert phrase in str(err.value)


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"metrics": ["orders_90d"]}, "metrics: expected a dict of names to columns"),
        ({"alpha": 2}, "alpha: expected a number from 1e-06 to 0.5"),
        ({"power": 0}, "power: expected a number from 0.5 to 0.999"),
        ({"target_lift": -1}, "target_lift: expected a number from 0.0001"),
        ({"target_lift": 1000}, "target_lift: expected a number from 0.0001 to 100"),
        ({"traffic": 5}, "traffic: expected a number from 1e-06 to 1"),
        ({"as_of": "2026-01-01"}, "as_of: expected a datetime.datetime"),
    ],
)
def test_validate_segments_options_out_of_bounds(folder, options, phrase):
    with pytest.raises(ConfigError) as err:
        experiment.validate_segments(folder / "segments.yaml", folder, **options)
    assert phrase in str(err.value)


@pytest.mark.parametrize("sample", [-1, 51, "3", 2.0])
def test_show_segments_sample_out_of_bounds(folder, sample):
    with pytest.raises(ConfigError, match="sample: expected an integer from 0 to 50"):
        experiment.show_segments(folder / "segments.yaml", folder, sample=sample)


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"attributes": "device"}, "attributes: expected a list of column names, not str"),
        ({"attributes": [1, 2]}, "attributes: expected a list of column names (strings)"),
        ({"seed": "x"}, "seed: expected an integer from 0"),
        ({"metric": 3}, "metric: expected a name (str) or None, not int 3"),
    ],
)
def test_refine_options_of_another_type(folder, exp, options, phrase):
    with pytest.raises(ConfigError) as err:
        experiment.refine(folder, exp, **options)
    assert phrase in str(err.value)


def test_assign_dataset_takes_a_folder_source_and_refuses_an_engine(tmp_path, dataset_dir):
    folder = shutil.copytree(dataset_dir, tmp_path / "data")
    exp = folder / "experiment.yaml"
    now = dt.datetime(2026, 3, 1)  # no zone: UTC, as everywhere
    summary = experiment.assign_dataset(DataSource(folder=folder), exp, now=now)
    assert summary.experiment == "exp1"
    stamped = pq.read_table(folder / "assignments.parquet")["assigned_at"].to_pylist()
    assert dt.datetime(2026, 3, 1, tzinfo=dt.UTC) in stamped
    with pytest.raises(ConfigError, match="assign_in_engine"):
        experiment.assign_dataset(DataSource(engine="duckdb:///x.db"), exp)
    with pytest.raises(ConfigError, match=r"now: expected a datetime\.datetime"):
        experiment.assign_dataset(folder, exp, now="2026-03-01")  # type: ignore[arg-type]


def test_an_opened_dataset_twice_gives_the_same_results(folder, exp):
    data = open_source(folder)
    try:
        first = experiment.analyze(data, exp).to_dicts()
        again = experiment.analyze(data, exp).to_dicts()
        # parallel sums may differ in the last bits between runs (test_api)
        assert [(r["n_control"], r["n_treatment"]) for r in again] == [
            (r["n_control"], r["n_treatment"]) for r in first
        ]
        means = [r[k] for r in first for k in ("mean_control", "mean_treatment", "p_value")]
        assert [
            r[k] for r in again for k in ("mean_control", "mean_treatment", "p_value")
        ] == pytest.approx(means, rel=1e-12, nan_ok=True)
    finally:
        data.con.disconnect()
    with pytest.raises(DataError, match="table 'customers': cannot read"):
        experiment.analyze(data, exp)  # its connection is closed now


def test_a_hand_built_dataset_is_checked_like_a_folder(folder, exp):
    import ibis

    con = ibis.duckdb.connect()
    tables = {
        name: con.create_table(name, pq.read_table(folder / f"{name}.parquet"))
        for name in ("customers", "events", "assignments")
    }
    built = Dataset(path="notebook", con=con, **tables)
    assert experiment.analyze(built, exp).results
    no_ts = con.create_table("e2", pq.read_table(folder / "events.parquet").drop_columns(["ts"]))
    broken = Dataset(path="notebook", con=con, **{**tables, "events": no_ts})
    with pytest.raises(DataError, match=r"notebook: table 'events' lacks column\(s\) ts"):
        experiment.analyze(broken, exp)


@pytest.fixture(scope="module")
def spec(exp):
    return AssignmentSpec.from_config(load_experiment(exp))


@pytest.mark.parametrize("user_id", [None, 1.0, True, b"u1"])
def test_assign_refuses_a_user_id_that_is_not_text_or_an_integer(spec, user_id):
    with pytest.raises(ConfigError, match="user_id: expected a str or int"):
        experiment.assign(user_id, spec)


def test_assign_integer_ids_are_their_text(spec):  # as the engine casts integer user_id columns
    assert [experiment.assign(i, spec) for i in range(50)] == [
        experiment.assign(str(i), spec) for i in range(50)
    ]


def test_assign_refuses_another_spec_and_a_lone_segment_name(spec, exp):
    with pytest.raises(ConfigError, match="spec: expected an AssignmentSpec"):
        experiment.assign("u1", {"salt": "x"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="spec: expected an AssignmentSpec"):
        experiment.assign("u1", exp)
    with pytest.raises(ConfigError, match="segments: expected a list of segment names"):
        experiment.assign("u1", spec, segments="mobile")
