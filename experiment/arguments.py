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
from typing import Any

from experiment.errors import ConfigError

__all__ = [
    "columns_arg",
    "data_arg",
    "got",
    "moment_arg",
    "names_arg",
    "number_arg",
    "path_arg",
]


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
