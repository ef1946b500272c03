"""A JSON document checked against the typed fields of a frozen dataclass (results.json).

The schema *is* the dataclasses of :mod:`experiment.results.analysis`: a field
without a default is required, a field's annotation is its JSON type (``float``: a
number or ``null``; ``int``: an integer or ``null``; ``str``; ``bool``; a tuple: a
list; a dict: an object; a nested dataclass: an object of its fields). The first
mismatch becomes one line naming the field path (``results[3].segment``), the type
expected and the type found. Unknown keys are refused at the top level and allowed
below it, where the contract welcomes extra fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from typing import Any, get_args, get_origin, get_type_hints

from experiment.textfile import dotted

__all__ = ["schema_problem"]

_FLOAT_MAX = 1.7976931348623157e308
_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _found(value: Any) -> str:
    for typ in (bool, int, float, str, list, dict, type(None)):
        if isinstance(value, typ):
            return _NAMES[typ]
    return type(value).__name__  # pragma: no cover - json.loads gives only the types above


def _scalar(typ: Any, value: Any) -> str | None:
    """Why ``value`` is not a JSON ``typ`` (None: it is)."""
    if typ is float:
        if value is None or type(value) is float:
            return None
        if type(value) is int:
            return None if abs(value) <= _FLOAT_MAX else "a number below 1.8e308"
        return "a number or null"
    if typ is int:
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        return None if ok else "an integer or null"
    if typ in (str, bool):
        return None if isinstance(value, typ) else _NAMES[typ]
    return None


def _describe(typ: Any) -> str:
    """The JSON type of an annotation, in words."""
    origin = get_origin(typ)
    if origin in (tuple, list):
        return "a list"
    if origin is dict or dataclasses.is_dataclass(typ):
        return "an object"
    return {float: "a number or null", int: "an integer or null"}.get(typ, _NAMES.get(typ, "?"))


_SCALARS = frozenset({float, int, str, bool})
Problem = tuple[tuple[str | int, ...], str, Any]


def _items(typ: Any, value: Any, path: tuple[str | int, ...]) -> Problem | None:
    """A list (``tuple[X, ...]``, ``list[X]``) or an object (``dict[str, X]``), item by item."""
    origin, args = get_origin(typ), get_args(typ)
    if origin is dict:
        if not isinstance(value, dict):
            return path, "an object", value
        pairs, item_type = list(value.items()), args[1]
    else:
        if not isinstance(value, list):
            return path, "a list", value
        pairs, item_type = list(enumerate(value)), args[0]
    for key, item in pairs:
        found = _check(item_type, item, (*path, key))
        if found is not None:
            return found
    return None


def _check(typ: Any, value: Any, path: tuple[str | int, ...]) -> Problem | None:
    if typ in _SCALARS:  # the common case first: most fields are numbers
        why = _scalar(typ, value)
        return None if why is None else (path, why, value)
    origin = get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        tries = [_check(arg, value, path) for arg in get_args(typ)]
        return None if any(t is None for t in tries) else tries[0]
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            return path, "an object", value
        return _fields(typ, value, path)
    if origin in (tuple, list, dict):
        return _items(typ, value, path)
    why = _scalar(typ, value)
    return None if why is None else (path, why, value)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


@functools.cache
def _schema(cls: Any) -> tuple[tuple[str, Any, bool], ...]:
    """``(name, type, required)`` of each field, resolved once per class, not once per row."""
    hints = get_type_hints(cls)
    return tuple((f.name, hints[f.name], _required(f)) for f in dataclasses.fields(cls))


def _fields(cls: Any, doc: dict[str, Any], path: tuple[str | int, ...]) -> Problem | None:
    for name, typ, required in _schema(cls):
        if name not in doc:
            if required:
                return (*path, name), "present", _describe(typ)
            continue
        found = _check(typ, doc[name], (*path, name))
        if found is not None:
            return found
    return None


def schema_problem(cls: Any, doc: Any, *, derived: tuple[str, ...] = ()) -> str | None:
    """Why ``doc`` does not match dataclass ``cls`` (one line), or None when it does.

    Args:
        cls: The dataclass whose fields are the document's schema.
        doc: The parsed JSON document.
        derived: Top-level keys the writer adds beside the fields (e.g. ``confidence_level``).
    """
    if not isinstance(doc, dict):
        return f"the top level must be an object of fields, not {_found(doc)}"
    names = [f.name for f in dataclasses.fields(cls)] + list(derived)
    required = [f.name for f in dataclasses.fields(cls) if _required(f)]
    if not any(name in doc for name in required):
        return f"not a seglift results file: it has none of the fields {', '.join(required)}"
    unknown = [k for k in doc if k not in names]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"fields are: {', '.join(names)}"
        return f"unknown top-level field {str(unknown[0])[:60]!r}; {hint}"
    found = _fields(cls, doc, ())
    if found is None:
        return None
    path, expected, value = found
    if expected == "present":
        return f"field '{dotted(path)}' is missing; it is required ({value})"
    return f"field '{dotted(path)}': expected {expected}, found {_found(value)}"
