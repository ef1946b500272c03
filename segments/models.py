"""Fitted cluster and predictive models: fit on a sample, save to the sidecar, compile.

The sidecar ``<segments file stem>.models.json`` sits next to the segments file
and holds, per cluster/predictive entry, its specification and the fitted
parameters (scaling, centroids or coefficients, band thresholds). It is written
atomically by ``exp segments fit`` or, when missing or outdated, the first time
the segments are compiled against data. With the sidecar in place, membership is
a pure Ibis expression of saved numbers: the same segments on every run, on a
fresh copy of the data, and on new data at rollout.

A predictive entry with an event target (:class:`segments.definitions.EventTarget`)
is labelled from the dataset's events and assignments when fitted
(:mod:`segments.targets`), so it must be fitted with those tables
(``exp segments fit``); membership still needs customer columns only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.errors import ConfigError, DataError, RuleError
from experiment.files import write_text_atomic
from experiment.results import json_ready
from segments.clusters import ClusterModel, cluster_exprs, fit_clusters
from segments.predictive import PredictModel, fit_propensity, predict_exprs
from segments.rules import Column

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from segments.compile import Compiler
    from segments.definitions import EventTarget, SegmentDef, SegmentSet

__all__ = ["EventTables", "Model", "fit_models", "load_models", "model_segments"]

Model = ClusterModel | PredictModel
SIDECAR_VERSION = 1
_MAX_PULL = 5_000_000


@dataclasses.dataclass(frozen=True)
class EventTables:
    """The events and assignments tables (same connection as the customers) for labels."""

    events: ir.Table
    assignments: ir.Table | None = None


def _event_target(entry: SegmentDef) -> EventTarget | None:
    from segments.definitions import EventTarget

    if entry.predict is not None and isinstance(entry.predict.target, EventTarget):
        return entry.predict.target
    return None


def _spec(entry: SegmentDef) -> dict[str, Any]:
    spec = entry.cluster or entry.predict
    if spec is None:  # pragma: no cover - only model entries get here
        raise RuntimeError("Not a model segment.")
    return {"kind": entry.kind, **spec.model_dump(mode="json")}


def _to_model(doc: dict[str, Any]) -> Model:
    params = dict(doc["params"])
    if doc["spec"]["kind"] == "cluster":
        params["centroids"] = tuple(tuple(c) for c in params["centroids"])
        for key in ("features", "log1p", "mean", "sd", "labels"):
            params[key] = tuple(params[key])
        return ClusterModel(**params)
    for key in ("features", "mean", "sd", "coef"):
        params[key] = tuple(params[key])
    params["bands"] = {k: tuple(v) for k, v in params["bands"].items()}
    params["auc"] = math.nan if params["auc"] is None else params["auc"]
    return PredictModel(**params)


def load_models(segment_set: SegmentSet) -> dict[str, tuple[dict[str, Any], Model]]:
    """The sidecar's models by entry name, with the spec each was fitted for ({} if absent).

    Raises:
        ConfigError: the sidecar exists but is not a valid models file.
    """
    path = segment_set.sidecar
    if not path.is_file():
        return {}
    from experiment.textfile import read_json

    doc = read_json(path, what="models", error=ConfigError)  # bounded, strict
    try:
        return {name: (m["spec"], _to_model(m)) for name, m in doc["models"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a valid models file ({exc}); delete it to refit") from None


def _save(segment_set: SegmentSet, models: dict[str, tuple[dict[str, Any], Model]]) -> None:
    doc = {
        "version": SIDECAR_VERSION,
        "segments_file": Path(segment_set.source).name,
        "fitted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "models": {
            name: {"spec": spec, "params": json_ready(dataclasses.asdict(model))}
            for name, (spec, model) in models.items()
        },
    }
    write_text_atomic(segment_set.sidecar, json.dumps(doc, indent=2, allow_nan=False) + "\n")


def _features(compiler: Compiler, entry: SegmentDef) -> list[Any]:
    spec = entry.cluster or entry.predict
    if spec is None:  # pragma: no cover
        raise RuntimeError("Not a model segment.")
    cols = []
    for name in spec.features:
        col = compiler.column(Column(name, 0))
        dtype = col.type()
        if not (dtype.is_numeric() or dtype.is_boolean()):
            raise RuleError(f"feature {name!r} is {dtype}; features must be numeric or boolean")
        cols.append(col.cast("float64"))
    return cols


def _pull(
    compiler: Compiler, entry: SegmentDef, tables: EventTables | None
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Feature rows (and target) without nulls, in user_id order, sampled with the seed."""
    cols = _features(compiler, entry)
    spec = entry.cluster or entry.predict
    if spec is None:  # pragma: no cover
        raise RuntimeError("Not a model segment.")
    select: dict[str, Any] = {f"f{i}": c for i, c in enumerate(cols)}
    if entry.target is not None:
        select["y"] = compiler.rule(entry.target).fill_null(False)
    table = compiler.table
    if "user_id" in table.columns:
        select["_order"] = table.user_id
    sample = table.select(**select)
    event_target = _event_target(entry)
    if event_target is not None:
        if tables is None:
            raise RuleError(
                "an event target is labelled from the events table; "
                "fit it with `exp segments fit SEGMENTS --data DATASET`"
            )
        if "_order" not in select:
            raise DataError("an event target needs a user_id column in the customers table")
        from segments.targets import event_labels

        labels = event_labels(event_target, table, tables.events, tables.assignments)
        sample = sample.inner_join(labels, sample._order == labels.user_id).drop("user_id")
    sample = sample.drop_null([f"f{i}" for i in range(len(cols))])
    if "_order" in select:
        sample = sample.order_by("_order")
    arrow = sample.limit(_MAX_PULL).to_pyarrow()
    n = arrow.num_rows
    if n < 20:
        raise DataError(f"only {n} customers have every feature; need at least 20 to fit")
    x = np.column_stack(
        [arrow.column(f"f{i}").to_numpy(zero_copy_only=False) for i in range(len(cols))]
    ).astype(np.float64)
    y = (
        arrow.column("y").to_numpy(zero_copy_only=False).astype(np.bool_)
        if "y" in sample.columns
        else np.zeros(n, np.bool_)
    )
    if n > spec.sample:
        rows = np.sort(np.random.default_rng(spec.seed).choice(n, spec.sample, replace=False))
        x, y = x[rows], y[rows]
    return x, y


def _fit(compiler: Compiler, entry: SegmentDef, tables: EventTables | None = None) -> Model:
    x, y = _pull(compiler, entry, tables)
    if entry.cluster is not None:
        c = entry.cluster
        return fit_clusters(x, tuple(c.features), k=c.k, k_max=c.k_max, seed=c.seed)
    p = entry.predict
    if p is None:  # pragma: no cover
        raise RuntimeError("Not a model segment.")
    return fit_propensity(
        x, y, tuple(p.features), bands=dict(p.bands), holdout=p.holdout, seed=p.seed, l2=p.l2
    )


def _writable(segment_set: SegmentSet) -> bool:
    return Path(segment_set.source).is_file()


def fit_models(
    segment_set: SegmentSet,
    table: ir.Table,
    *,
    as_of: dt.datetime | None,
    events: EventTables | None = None,
) -> dict[str, Model]:
    """Fit every cluster and predictive entry on ``table`` and write the sidecar.

    Args:
        segment_set: The parsed segments file.
        table: The customers table (features, rule targets).
        as_of: Analysis start for ``days_since()`` and lifecycle.
        events: Events and assignments on ``table``'s connection, to label event targets.

    Raises:
        ConfigError: an event target names an unknown event, experiment or arm.
        RuleError: a feature or target names an unknown column, or an event target
            has no events table.
        DataError: too few complete rows, or a model cannot be fitted.
    """
    from segments.compile import Compiler

    compiler = Compiler(table, as_of=as_of, segment_set=segment_set)
    models: dict[str, tuple[dict[str, Any], Model]] = {}
    for entry in segment_set.segments:
        if entry.kind in ("cluster", "predict"):
            try:
                models[entry.name] = (_spec(entry), _fit(compiler, entry, events))
            except (ConfigError, RuleError, DataError) as exc:
                raise type(exc)(f"{segment_set.source}: segment {entry.name!r}: {exc}") from None
    if models:
        _save(segment_set, models)
    return {name: model for name, (_, model) in models.items()}


def model_segments(
    compiler: Compiler, entry: SegmentDef, *, fit_missing: bool
) -> list[tuple[str, ir.BooleanValue]]:
    """The segments of a cluster or predictive entry, compiled from its saved model."""
    segment_set = compiler.segment_set
    if segment_set is None:  # pragma: no cover - compile_segments always passes a set
        raise RuntimeError("Model segments need their segments file.")
    stored = load_models(segment_set)
    spec = _spec(entry)
    if entry.name in stored and stored[entry.name][0] == spec:
        model = stored[entry.name][1]
    elif fit_missing:
        model = _fit(compiler, entry)
        if _writable(segment_set):
            stored[entry.name] = (spec, model)
            _save(segment_set, stored)
    else:
        raise RuleError(
            f"no up-to-date fitted model in {segment_set.sidecar}; run `exp segments fit`"
        )
    cols = _features(compiler, entry)
    if isinstance(model, ClusterModel):
        return [
            (f"{entry.name}_{label}"[:64], e)
            for label, e in zip(model.labels, cluster_exprs(model, cols), strict=True)
        ]
    return [
        (f"{entry.name}_{band}"[:64], e)
        for band, e in zip(model.bands, predict_exprs(model, cols), strict=True)
    ]
