"""sums.parquet: the sufficient statistics of an analysis as one long table you can keep.

``exp analyze --save-sums`` writes it beside results.json; ``exp analyze
--from-sums`` re-runs the statistics from it (another alpha, correction or
decision rule) without the data. One row per (day, segment, arm, metric):

========================  ===================================================
column                    meaning
========================  ===================================================
``day``                   ``null`` for the final analysis; an ISO date for a
                          sequential experiment's cumulative sums up to that day
``segment``, ``arm``,     the cell (``all`` first; arms in the experiment's order)
``metric``
``units``                 users of the (segment, arm)
``n``                     users of the cell
``mean_y``, ``m2_y``      mean and centred sum of squares ``Σ(y - ȳ)²``
``mean_x``, ``m2_x``,     ratio metrics: the denominator's mean, ``Σ(x - x̄)²``
``c_xy``                  and ``Σ(x - x̄)(y - ȳ)`` (``null`` otherwise)
``cuped_mean_x``,         CUPED metrics: the same moments of the pre-period
``cuped_m2_x``,           covariate (``null`` otherwise)
``cuped_c_xy``
========================  ===================================================

What is not per cell is JSON in the Parquet key-value metadata under
``seglift.sums``: the format version, the order of segments, arms and metrics
(with each metric's kind and covariate), the window start and end, the
allocation strata and units per (segment, stratum, arm), the data-quality
counts, the metrics' caps, each timeline day's end, the assignment span in
days (``assignment_days``; absent in older files: unknown) and the pre-exposure
balance covariates' sums (``balance``: per column, ``n``, ``mean`` and ``m2`` as
(segment, arm) grids; absent in older files: no balance check). A metric adjusted
by a list of covariates adds three list columns (:mod:`~experiment.results.sums_regression`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.errors import DataError
from experiment.results.balance_sums import balance_from_json, balance_to_json
from experiment.results.jsonvalue import json_ready
from experiment.results.sums_regression import (
    REGRESSION_COLUMNS,
    regression_fields,
    regression_values,
    with_regression,
)
from experiment.sums import CellSums, JointSums, MeanSums, QualityCounts

if TYPE_CHECKING:
    import pyarrow as pa


__all__ = [
    "COLUMNS",
    "METADATA_KEY",
    "cells_from_table",
    "read_sums",
    "sums_table",
    "write_sums",
    "write_sums_to",
]

METADATA_KEY = b"seglift.sums"
FORMAT_VERSION = 1
_KEYS = ("day", "segment", "arm", "metric")
_MOMENTS = ("units", "n", "mean_y", "m2_y", "mean_x", "m2_x", "c_xy")
_CUPED = ("cuped_mean_x", "cuped_m2_x", "cuped_c_xy")
COLUMNS: tuple[str, ...] = (*_KEYS, *_MOMENTS, *_CUPED)


def _rows(day: str | None, cells: CellSums) -> dict[str, list[Any]]:
    """The long rows of one :class:`CellSums` (the final analysis or one timeline day)."""
    out: dict[str, list[Any]] = {c: [] for c in (*COLUMNS, *REGRESSION_COLUMNS)}
    for name, sums in cells.metrics.items():
        joint = sums if isinstance(sums, JointSums) else None
        cuped = cells.cuped.get(name)
        for si, segment in enumerate(cells.segments):
            for j, arm in enumerate(cells.arms):
                cell = (si, j)
                out["day"].append(day)
                out["segment"].append(segment)
                out["arm"].append(arm)
                out["metric"].append(name)
                out["units"].append(float(cells.units[cell]))
                out["n"].append(float(sums.n[cell]))
                y = sums.y if isinstance(sums, JointSums) else sums
                out["mean_y"].append(float(y.mean[cell]))
                out["m2_y"].append(float(y.m2[cell]))
                for col, src, attr in (
                    ("mean_x", joint, "mean_x"),
                    ("m2_x", joint, "m2_x"),
                    ("c_xy", joint, "c_xy"),
                    ("cuped_mean_x", cuped, "mean_x"),
                    ("cuped_m2_x", cuped, "m2_x"),
                    ("cuped_c_xy", cuped, "c_xy"),
                ):
                    out[col].append(None if src is None else float(getattr(src, attr)[cell]))
                for col, value in regression_values(cells, name, cell).items():
                    out[col].append(value)
    return out


def _nan_if_none(value: Any) -> float:
    """A float from metadata; ``nan`` for ``null`` or a key older files lack."""
    return math.nan if value is None else float(value)


def _metadata(cells: CellSums) -> dict[str, Any]:
    return {
        "format": "seglift-sums",
        "version": FORMAT_VERSION,
        "segments": list(cells.segments),
        "arms": list(cells.arms),
        "metrics": [
            {
                "name": name,
                "sums": "joint" if isinstance(sums, JointSums) else "mean",
                "cuped": name in cells.cuped,
                **(
                    {"regression": list(cells.regression_names[name])}
                    if name in cells.regression
                    else {}
                ),
            }
            for name, sums in cells.metrics.items()
        ],
        "window_start": cells.window_start.isoformat(),
        "window_end": cells.window_end.isoformat(),
        "strata": list(cells.strata),
        "strata_units": None if cells.strata_units is None else cells.strata_units.tolist(),
        "quality": {
            **{k: v for k, v in vars(cells.quality).items() if k != "value_columns"},
            "value_columns": list(cells.quality.value_columns),
        },
        "caps": {k: json_ready(v) for k, v in cells.caps.items()},
        "assignment_days": json_ready(cells.assignment_days),
        "balance": balance_to_json(cells.balance),
        "timeline": [
            {"date": date, "window_end": day.window_end.isoformat()} for date, day in cells.timeline
        ],
    }


def sums_table(cells: CellSums) -> pa.Table:
    """The long table of ``cells`` (final sums, then each timeline day), metadata attached.

    Examples:
        >>> import datetime as dt
        >>> from experiment.sums import MeanSums
        >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        >>> cells = CellSums(segments=("all",), arms=("control", "treatment"),
        ...     units=np.array([[10.0, 12.0]]), window_start=t0, window_end=t0,
        ...     metrics={"conversion": MeanSums(n=[[10.0, 12.0]], mean=[[0.1, 0.25]],
        ...                                     m2=[[0.9, 2.25]])})
        >>> table = sums_table(cells)
        >>> table.num_rows, table.column("mean_y").to_pylist()
        (2, [0.1, 0.25])
        >>> cells_from_table(table).metrics["conversion"].mean.tolist()
        [[0.1, 0.25]]
    """
    import pyarrow as pa

    parts = [_rows(None, cells), *(_rows(date, day) for date, day in cells.timeline)]
    listed = REGRESSION_COLUMNS if cells.regression else ()
    columns = {c: [v for part in parts for v in part[c]] for c in (*COLUMNS, *listed)}
    fields = [pa.field(c, pa.string()) for c in _KEYS]
    fields += [pa.field(c, pa.float64()) for c in (*_MOMENTS, *_CUPED)]
    fields += regression_fields() if listed else []
    meta = {METADATA_KEY: json.dumps(_metadata(cells)).encode()}
    schema = pa.schema(fields, metadata=meta)
    return pa.Table.from_pydict(columns, schema=schema)


def _grids(
    rows: dict[str, list[Any]],
    picked: list[int],
    segments: Sequence[str],
    arms: Sequence[str],
    metric: str,
) -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
    """Each moment column of one metric's rows as a (segment, arm) grid."""
    shape = (len(segments), len(arms))
    si = {s: i for i, s in enumerate(segments)}
    aj = {a: j for j, a in enumerate(arms)}
    grids = {c: np.full(shape, np.nan) for c in (*_MOMENTS, *_CUPED)}
    for r in picked:
        if rows["metric"][r] != metric:
            continue
        cell = (si[rows["segment"][r]], aj[rows["arm"][r]])
        for c, grid in grids.items():
            value = rows[c][r]
            grid[cell] = np.nan if value is None else value
    return grids


def _cells(
    rows: dict[str, list[Any]], picked: list[int], meta: dict[str, Any], end: dt.datetime
) -> CellSums:
    """One :class:`CellSums` (without strata, quality, caps or timeline) from its rows."""
    segments, arms = tuple(meta["segments"]), tuple(meta["arms"])
    metrics: dict[str, MeanSums | JointSums] = {}
    cuped: dict[str, JointSums] = {}
    units = np.zeros((len(segments), len(arms)))
    for spec in meta["metrics"]:
        g = _grids(rows, picked, segments, arms, spec["name"])
        units = g["units"]
        y = {"n": g["n"], "mean_y": g["mean_y"], "m2_y": g["m2_y"]}
        if spec["sums"] == "joint":
            metrics[spec["name"]] = JointSums(
                **y, mean_x=g["mean_x"], m2_x=g["m2_x"], c_xy=g["c_xy"]
            )
        else:
            metrics[spec["name"]] = MeanSums(n=g["n"], mean=g["mean_y"], m2=g["m2_y"])
        if spec["cuped"]:
            cuped[spec["name"]] = JointSums(
                **y, mean_x=g["cuped_mean_x"], m2_x=g["cuped_m2_x"], c_xy=g["cuped_c_xy"]
            )
    cells = CellSums(
        segments=segments,
        arms=arms,
        units=units,
        metrics=metrics,
        window_start=dt.datetime.fromisoformat(meta["window_start"]),
        window_end=end,
        cuped=cuped,
    )
    return with_regression(cells, rows, picked, meta["metrics"])


def cells_from_table(table: pa.Table) -> CellSums:
    """The :class:`CellSums` a :func:`sums_table` holds (exactly: float64 throughout).

    Raises:
        DataError: the table lacks the seglift metadata or a column.
    """
    meta = _read_metadata(table)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"not a seglift sums table: lacks column(s) {', '.join(missing)}")
    present = [c for c in REGRESSION_COLUMNS if c in table.column_names]  # newer files
    rows = {c: table.column(c).to_pylist() for c in (*COLUMNS, *present)}
    by_day: dict[str | None, list[int]] = {}
    for r, day in enumerate(rows["day"]):
        by_day.setdefault(day, []).append(r)
    try:
        final = _cells(
            rows, by_day.get(None, []), meta, dt.datetime.fromisoformat(meta["window_end"])
        )
        timeline = tuple(
            (
                d["date"],
                _cells(
                    rows,
                    by_day.get(d["date"], []),
                    meta,
                    dt.datetime.fromisoformat(d["window_end"]),
                ),
            )
            for d in meta["timeline"]
        )
        quality = QualityCounts(
            **{
                **meta["quality"],
                "value_columns": tuple(meta["quality"]["value_columns"]),
                "segment_warnings": tuple(meta["quality"].get("segment_warnings", ())),
            }
        )
        strata_units = meta["strata_units"]
        return CellSums(
            segments=final.segments,
            arms=final.arms,
            units=final.units,
            metrics=final.metrics,
            window_start=final.window_start,
            window_end=final.window_end,
            strata=tuple(meta["strata"]),
            strata_units=None if strata_units is None else np.asarray(strata_units, dtype=float),
            quality=quality,
            cuped=final.cuped,
            caps={k: math.nan if v is None else float(v) for k, v in meta["caps"].items()},
            timeline=timeline,
            assignment_days=_nan_if_none(meta.get("assignment_days")),
            balance=balance_from_json(meta.get("balance")),
            regression=final.regression,
            regression_names=final.regression_names,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"not a seglift sums table: invalid metadata or cell ({exc})") from None


def _read_metadata(table: pa.Table) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise DataError(
            "not a seglift sums table (no seglift.sums metadata; write one with "
            "`exp analyze --save-sums`)"
        )
    from experiment.textfile import parse_json

    try:
        meta = parse_json(
            raw.decode("utf-8"), source="seglift.sums metadata", what="sums", error=DataError
        )
    except (DataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"not a seglift sums table (unreadable seglift.sums metadata: {exc})"
        ) from None
    if not isinstance(meta, dict):
        raise DataError("not a seglift sums table (seglift.sums metadata is not an object)")
    if meta.get("format") != "seglift-sums" or meta.get("version") != FORMAT_VERSION:
        raise DataError(
            f"not a seglift sums table of version {FORMAT_VERSION} "
            f"(found {meta.get('format')!r} version {meta.get('version')!r})"
        )
    return meta


def write_sums(cells: CellSums, path: Path) -> Path:
    """Write ``cells`` as sums.parquet, atomically (temp file, then rename)."""
    from experiment.files import write_together

    target = Path(path)
    write_together([(target, lambda tmp: write_sums_to(cells, tmp))])
    return target


def write_sums_to(cells: CellSums, path: Path) -> None:
    """Write ``cells`` as a sums Parquet file at ``path`` as is (the caller makes it atomic)."""
    import pyarrow.parquet as pq

    pq.write_table(sums_table(cells), path)


def read_sums(path: Path) -> CellSums:
    """Read a sums.parquet written by :func:`write_sums`.

    Raises:
        DataError: the file is missing, not Parquet, or not a seglift sums table
            (one line naming the file and what is wrong).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: sums file not found")
    try:
        # ParquetFile, not read_table: it reads one file without the dataset layer
        table = pq.ParquetFile(source).read()
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{source}: not a Parquet file ({first})") from None
    try:
        return cells_from_table(table)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
