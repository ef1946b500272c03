"""The Python API's arguments, checked where a notebook calls in.

A notebook passes what is at hand: ``None``, a pandas DataFrame, the YAML text
itself, ``"0.05"`` for a number, a string where a list goes. Each check returns
the value or raises one :class:`~experiment.errors.ConfigError` line naming the
argument, what it got and what is valid, with the CLI's bounds for numbers
(:mod:`experiment.api`), so no raw ``TypeError`` from pathlib or a DuckDB
binder error reaches the caller.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiment.errors import ConfigError

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.sums import CellSums
    from segments.definitions import SegmentSet

__all__ = [
    "ALPHA",
    "DAYS",
    "LIFT",
    "POWER",
    "SAMPLE",
    "TARGET_LIFT",
    "TRAFFIC_SHARE",
    "USERS_PER_DAY",
    "columns_arg",
    "config_arg",
    "data_arg",
    "folder_arg",
    "got",
    "moment_arg",
    "name_arg",
    "names_arg",
    "number_arg",
    "path_arg",
    "power_args",
    "segment_file_arg",
    "segments_arg",
    "sums_arg",
    "validation_args",
]

# (lowest, highest) of the options the CLI and the API share: typer's min/max, number_arg's bounds
LIFT = (1e-6, 100.0)  # a relative lift to detect (exp power --lift)
POWER = (0.5, 0.999)  # below 0.5 a plan is no plan; 1 needs infinitely many users
DAYS = (1, 3650)
USERS_PER_DAY = (1e-9, 1e10)  # more than the world's population every day; beyond it days overflow
ALPHA = (1e-6, 0.5)
TARGET_LIFT = (1e-4, 100.0)
TRAFFIC_SHARE = (1e-6, 1.0)  # the share of customers entering the experiment
SAMPLE = (0, 50)  # anonymised profiles per segment


def got(value: object) -> str:
    """What a caller passed, for a message: its type, and the value when short."""
    shown = repr(value)
    if len(shown) <= 40:
        return f"{type(value).__name__} {shown}"
    if isinstance(value, str):  # e.g. the YAML text itself
        return f"a str of {len(value):,} characters on {value.count(chr(10)) + 1} line(s)"
    return type(value).__name__


def path_arg(value: object, name: str, expected: str) -> Path:
    """A path argument (``str`` or ``os.PathLike``); anything else is a one-line ConfigError.

    A notebook passes what is at hand: ``None``, a DataFrame, the YAML text itself.
    """
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        if isinstance(text, str) and text.strip() and "\n" not in text and "\x00" not in text:
            return Path(text)
    raise ConfigError(f"{name}: expected {expected}, not {got(value)}")


def number_arg(
    value: object, name: str, low: float, high: float = math.inf, *, whole: bool = False
) -> Any:
    """A finite number within ``[low, high]`` (the CLI's bounds), else a one-line ConfigError."""
    kind = numbers.Integral if whole else numbers.Real
    try:
        number = (
            math.nan if isinstance(value, bool) or not isinstance(value, kind) else float(value)
        )
    except OverflowError:  # an integer beyond any float
        number = math.inf
    if not (low <= number <= high and math.isfinite(number)):
        what = "an integer" if whole else "a number"
        upper = "" if math.isinf(high) else f" to {high:g}"
        raise ConfigError(f"{name}: expected {what} from {low:g}{upper}, not {got(value)}")
    return value


def moment_arg(value: object, name: str) -> dt.datetime | None:
    """A ``datetime`` or ``None`` (a time without a zone is UTC, as everywhere in seglift)."""
    if value is not None and not isinstance(value, dt.datetime):
        raise ConfigError(f"{name}: expected a datetime.datetime, not {got(value)}")
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


def names_arg(value: object, name: str) -> Any:
    """A list of column names (a lone string would be read letter by letter)."""
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ConfigError(f"{name}: expected a list of column names, not {got(value)}")
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name}: expected a list of column names (strings), not {got(value)}")
    return value


def columns_arg(value: object, name: str) -> Any:
    """A mapping of names to column names or rules (``None``: none)."""
    if value is not None and not (
        isinstance(value, Mapping) and all(isinstance(v, str) for v in (*value, *value.values()))
    ):
        raise ConfigError(f"{name}: expected a dict of names to columns, not {got(value)}")
    return value


def data_arg(dataset: object, *, opened_ok: bool = True) -> Any:
    """A dataset folder, a DataSource (or, where allowed, an opened Dataset), checked."""
    from experiment.engine.dataset import Dataset
    from experiment.engine.source import DataSource

    if isinstance(dataset, DataSource):
        return dataset
    if opened_ok and isinstance(dataset, Dataset):  # perhaps built by hand: check it
        from experiment.engine.warehouse import check_dataset

        return check_dataset(dataset)
    kinds = ", a DataSource or an opened Dataset" if opened_ok else " or a DataSource"
    return path_arg(dataset, "dataset", f"a dataset folder (str or Path){kinds}")


def config_arg(experiment: object) -> ExperimentConfig:
    """An experiment config from a YAML path, or the config itself."""
    from experiment.config import ExperimentConfig, load_experiment

    if isinstance(experiment, ExperimentConfig):
        return experiment
    wanted = "the experiment YAML file's path or an ExperimentConfig"
    return load_experiment(path_arg(experiment, "experiment", wanted))


def segments_arg(segments: object, config: ExperimentConfig | None) -> SegmentSet | None:
    """A segments file from a path, the set itself, or (``None``) the experiment's file."""
    from segments import load_segments
    from segments.definitions import SegmentSet

    if isinstance(segments, SegmentSet):
        return segments
    if segments is not None:
        return load_segments(path_arg(segments, "segments", _SEGMENTS))
    if config is not None and config.segments is not None:
        return load_segments(config.segments)
    return None


_SEGMENTS = "the segments YAML file's path or a SegmentSet"


def segment_file_arg(segments: object) -> SegmentSet:
    """A segments file from a path, or the set itself (required)."""
    from segments import load_segments
    from segments.definitions import SegmentSet

    if isinstance(segments, SegmentSet):
        return segments
    return load_segments(path_arg(segments, "segments", _SEGMENTS))


def name_arg(value: object, name: str) -> str | None:
    """A name (a metric's, an arm's) or ``None``."""
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name}: expected a name (str) or None, not {got(value)}")
    return value


def power_args(
    *, lift: object, power: object, days: object, per_day: object, traffic: object
) -> int | None:
    """:func:`experiment.api.plan_power`'s options, within ``exp power``'s bounds; the days."""
    number_arg(lift, "lift", *LIFT)
    number_arg(power, "power", *POWER)
    if per_day is not None:
        number_arg(per_day, "users_per_day", *USERS_PER_DAY)
    if traffic not in (None, "base", "daily"):
        raise ConfigError(f"traffic: expected 'base', 'daily' or None, not {got(traffic)}")
    return None if days is None else int(number_arg(days, "days", *DAYS, whole=True))


def folder_arg(dataset: object) -> Path:
    """A dataset folder, or a DataSource of one (``assign_dataset`` writes into it)."""
    from experiment.engine.source import DataSource

    if isinstance(dataset, DataSource):
        if dataset.folder is None:  # an engine: assign_in_engine writes there
            raise ConfigError(
                "dataset: assign_dataset assigns a dataset folder; for an engine use "
                "experiment.engine.assign.assign_in_engine (exp assign --engine)"
            )
        dataset = dataset.folder
    return path_arg(dataset, "dataset", "a dataset folder (str or Path) or its DataSource")


def validation_args(*, alpha: object, power: object, target_lift: object, traffic: object) -> None:
    """:func:`experiment.api.validate_segments`' options, within ``exp segments validate``'s."""
    if alpha is not None:
        number_arg(alpha, "alpha", *ALPHA)
    number_arg(power, "power", *POWER)
    number_arg(target_lift, "target_lift", *TARGET_LIFT)
    if traffic is not None:
        number_arg(traffic, "traffic", *TRAFFIC_SHARE)


def sums_arg(sums: object) -> CellSums | Path:
    """Kept sums, or the path of a sums file."""
    from experiment.sums import CellSums

    if isinstance(sums, CellSums):
        return sums
    return path_arg(sums, "sums", "a sums.parquet path (exp analyze --save-sums) or CellSums")
