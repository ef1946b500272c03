"""What each analysed segment is, in words: the definition a report and results.json show.

Rule segments are their rule. The other kinds expand when compiled, and their
names are all the analysis keeps, so each name is matched back to its entry:
a crossed segment to its columns' values (``lifecycle == 'at_risk' and device ==
'mobile'``, lifecycle stages with their rule), a cluster to its centroid's
distinctive features and a score band to its target, quantiles and AUC (both
from the fitted models file), ``rest`` to the segments it excludes. The text of
each kind comes from beside its definition: :func:`segments.lifecycle.stage_rule`,
:func:`segments.clusters.describe_cluster`, :func:`segments.predictive.describe_band`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from experiment.errors import ConfigError
from segments.clusters import ClusterModel, describe_cluster
from segments.definitions import REST, EventTarget
from segments.lifecycle import LIFECYCLE, STAGES, stage_rule
from segments.predictive import PredictModel, describe_band

if TYPE_CHECKING:
    from collections.abc import Sequence

    from segments.definitions import SegmentDef, SegmentSet
    from segments.models import Model

__all__ = ["EVERYONE", "Described", "describe_segments", "measured_names"]

_MAX_LISTED = 6


@dataclass(frozen=True, kw_only=True)
class Described:
    """One analysed segment's definition in words and the user's own description."""

    definition: str
    description: str = ""


EVERYONE = Described(
    definition="everyone assigned to the experiment", description="all assigned users"
)


def describe_segments(segment_set: SegmentSet, names: Sequence[str]) -> dict[str, Described]:
    """The definition (and the entry's description) of every name the analysis measured.

    ``names`` are the analysed segments (``all`` first, as in the sums). A name no
    entry explains (a model refitted since, a name cut at 64 characters) gets an
    honest generic definition naming its entry's kind.
    """
    models = _models(segment_set)
    out: dict[str, Described] = {"all": EVERYONE}
    left = [n for n in names if n not in ("all", REST)]
    entries = sorted(segment_set.segments, key=lambda e: (e.kind == "cross", -len(e.name)))
    for entry in entries:  # exact names first, then crosses by longest prefix
        found = _entry(entry, left, segment_set, models.get(entry.name))
        out.update(found)
        left = [n for n in left if n not in found]
    if segment_set.exclusive:
        out = _first_match(out, names)
    return {n: out[n] for n in names if n in out}


def measured_names(
    segment_set: SegmentSet, measured: Sequence[str], *, source: object
) -> list[str]:
    """The segments an analysis of this file measures, beside ``all``.

    Rule entries are measured under their names, then ``rest`` if exclusive.
    Crossed, cluster and predictive entries expand into names only the data tell
    (``lifecycle_at_risk``): then the ``measured`` names (``all`` first, as in
    kept sums) are the answer when an entry explains each of them.

    Raises:
        ConfigError: a measured segment that no entry explains, or a rule entry
            (or ``rest``) not measured (named with ``source``).
    """
    rules = [s.name for s in segment_set.segments if s.kind == "rule"]
    plain = rules + ([REST] if segment_set.exclusive else [])
    if len(rules) == len(segment_set.segments):
        return plain
    explained = describe_segments(segment_set, measured)
    stray = [n for n in measured[1:] if n not in explained and n != REST]
    stray += [f"(no {n})" for n in plain if n not in measured]
    if stray:
        raise ConfigError(
            f"{source}: the sums' segments do not match {segment_set.source}: "
            f"{', '.join(stray)}; re-run the analysis on the data with this segments file"
        )
    return list(measured[1:])


def _models(segment_set: SegmentSet) -> dict[str, Model]:
    from segments.models import load_models

    try:
        return {name: model for name, (_, model) in load_models(segment_set).items()}
    except ConfigError:  # an unreadable models file: the generic definitions say so
        return {}


def _entry(
    entry: SegmentDef, names: list[str], segment_set: SegmentSet, model: Model | None
) -> dict[str, Described]:
    own = entry.description
    if entry.kind == "rule":
        found = {entry.name: entry.where} if entry.name in names else {}
    elif entry.kind == "cross":
        found = _crossed(entry, names, segment_set)
    else:
        found = _modelled(entry, names, model)
    return {n: Described(definition=text, description=own) for n, text in found.items()}


def _modelled(entry: SegmentDef, names: list[str], model: Model | None) -> dict[str, str]:
    prefix = f"{entry.name}_"
    mine = [n for n in names if n.startswith(prefix)]
    known: dict[str, str] = {}
    if isinstance(model, ClusterModel):
        for i, label in enumerate(model.labels):
            known[f"{entry.name}_{label}"[:64]] = describe_cluster(model, i)
    elif isinstance(model, PredictModel) and entry.predict is not None:
        target = entry.predict.target
        text = target.describe() if isinstance(target, EventTarget) else target
        for band, quantiles in entry.predict.bands.items():
            name = f"{entry.name}_{band}"[:64]
            known[name] = f"{band}: {describe_band(model, quantiles, target=text)}"
    what = "k-means cluster" if entry.kind == "cluster" else "propensity score band"
    generic = f"a {what} of {entry.name!r} (its fitted model is not in the models file)"
    return {n: known.get(n, generic) for n in mine}


def _crossed(entry: SegmentDef, names: list[str], segment_set: SegmentSet) -> dict[str, str]:
    prefix = f"{entry.name}_"
    options = {n: _splits(n[len(prefix) :], entry.cross) for n in names if n.startswith(prefix)}
    chosen = _resolve({n: splits for n, splits in options.items() if splits})
    out = {}
    for name in options:
        if name in chosen:
            out[name] = _combination(entry.cross, chosen[name], segment_set)
        else:
            dims = ", ".join(entry.cross)
            out[name] = f"one combination of {dims} (its values are not in the name)"
    return out


def _resolve(options: dict[str, list[tuple[str, ...]]]) -> dict[str, tuple[str, ...]]:
    """One reading per name, anchored on the names that can be read one way only.

    ``paid_search_mobile`` under ``cross: [channel, device]`` reads as
    (paid, search_mobile) or (paid_search, mobile); a name such as ``organic_mobile``
    has one reading and makes ``mobile`` a known device, which settles the first.
    Readings that reuse known values win, and each settled name adds its values.
    """
    chosen = {n: splits[0] for n, splits in options.items() if len(splits) == 1}
    known = {(k, v) for values in chosen.values() for k, v in enumerate(values)}
    open_ = [n for n in options if n not in chosen]
    while open_:
        scored = []
        for name in open_:
            hits = [sum((k, v) in known for k, v in enumerate(s)) for s in options[name]]
            best = max(hits)
            scored.append((best, hits.count(best) == 1, name, options[name][hits.index(best)]))
        _, _, name, values = max(scored, key=lambda t: (t[0], t[1]))  # surest first
        chosen[name] = values  # a tie keeps the first reading
        known |= set(enumerate(values))
        open_.remove(name)
    return chosen


def _splits(rest: str, dims: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every way to read ``rest`` as one value per column (``_`` joins them, and may be in one)."""
    tokens = rest.split("_")
    found = []
    for cuts in itertools.combinations(range(1, len(tokens)), len(dims) - 1):
        bounds = (0, *cuts, len(tokens))
        found.append(tuple("_".join(tokens[a:b]) for a, b in itertools.pairwise(bounds)))
    staged = [
        s for s in found if all(v in STAGES for d, v in zip(dims, s, strict=True) if d == LIFECYCLE)
    ]
    return staged or found


def _literal(value: str) -> str:
    plain = value.lstrip("-").replace(".", "", 1).isdigit() or value in ("True", "False")
    return value if plain else repr(value)


def _combination(dims: tuple[str, ...], values: tuple[str, ...], segment_set: SegmentSet) -> str:
    rule = " and ".join(f"{d} == {_literal(v)}" for d, v in zip(dims, values, strict=True))
    stages = [
        f"{v}: {stage_rule(v, segment_set.lifecycle)}"
        for d, v in zip(dims, values, strict=True)
        if d == LIFECYCLE and v in STAGES
    ]
    return f"{rule} ({'; '.join(stages)})" if stages else rule


def _first_match(out: dict[str, Described], names: Sequence[str]) -> dict[str, Described]:
    """Exclusive sets: each segment also excludes the earlier ones; ``rest`` is what is left."""
    earlier: list[str] = []
    result = dict(out)
    for name in names:
        if name == "all":
            continue
        if name == REST:
            listed = ", ".join(earlier[:_MAX_LISTED])
            more = f" and {len(earlier) - _MAX_LISTED} more" if len(earlier) > _MAX_LISTED else ""
            result[name] = Described(definition=f"in none of the segments above ({listed}{more})")
            continue
        if earlier and name in result:
            seen = result[name]
            text = f"{seen.definition}; and in no earlier segment (first match wins)"
            result[name] = Described(definition=text, description=seen.description)
        earlier.append(name)
    return result
