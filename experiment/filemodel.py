"""The base of every configuration file's model, and its errors as one line.

Experiment, segments and scenario files are pydantic models on :class:`FileModel`:
frozen, no unknown field, numbers finite (``.nan``, ``.inf`` and ``"1e999"`` are
refused), and a boolean never taken for a number (pydantic would read ``true`` as
``1``), nor an integer beyond 64 bits. :func:`format_validation_error` turns
pydantic's multi-line report into one line: the file, the first error's field as
a dotted path (``metrics[1].cap.value``), what is wrong and what was given.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from experiment.textfile import dotted

__all__ = ["FileModel", "format_validation_error"]

_INT64 = 2**63 - 1
_UNIONS = (typing.Union, types.UnionType)


def _strip(annotation: Any) -> Any:
    """``Annotated[X, ...]`` as ``X``."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    annotation = _strip(annotation)
    if get_origin(annotation) in _UNIONS:
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]


def _wrong_scalar(annotation: Any, value: Any) -> str | None:
    """Why a scalar does not fit a numeric annotation (None: it fits or is not numeric)."""
    members = _members(annotation)
    if bool in members or not any(m in (int, float) for m in members):
        return None
    if isinstance(value, bool):
        return f"{str(value).lower()} is a boolean; a number is expected"
    if isinstance(value, int) and abs(value) > _INT64:
        return f"{value:.3g} is too large; numbers must fit in 64 bits"
    return None


def _children(annotation: Any, value: Any) -> list[tuple[str | int, Any, Any]]:
    """``(key, annotation, value)`` of each part of ``value`` that ``annotation`` types."""
    out: list[tuple[str | int, Any, Any]] = []
    for member in _members(annotation):
        origin, args = get_origin(member), get_args(member)
        if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(value, dict):
            fields = member.model_fields
            out += [(k, fields[k].annotation, v) for k, v in value.items() if k in fields]
        elif origin is dict and isinstance(value, dict) and len(args) == 2:
            out += [(str(k), args[1], v) for k, v in value.items()]
        elif origin in (list, tuple) and isinstance(value, list) and args:
            many = origin is list or (len(args) == 2 and args[1] is Ellipsis)
            types_ = [args[0]] * len(value) if many else list(args)
            out += [(i, t, v) for i, (t, v) in enumerate(zip(types_, value, strict=False))]
        else:
            continue
        return out
    return out


def _first_problem(
    annotation: Any, value: Any, path: tuple[str | int, ...]
) -> tuple[tuple[str | int, ...], str] | None:
    why = _wrong_scalar(annotation, value)
    if why is not None:
        return path, why
    for key, child_type, child in _children(annotation, value):
        found = _first_problem(child_type, child, (*path, key))
        if found is not None:
            return found
    return None


class FileModel(BaseModel):
    """A frozen model of a file's fields: finite numbers, no booleans or huge integers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        found = _first_problem(cls, data, ())
        if found is not None:
            path, why = found
            raise PydanticCustomError("number", "{why}", {"why": why, "path": dotted(path)})
        return data


def _tag(part: str | int) -> bool:
    """Whether a location part is pydantic's name of a union member, not a field."""
    return isinstance(part, str) and (
        "[" in part or part in ("int", "float", "str", "bool", "none", "list", "dict", "tuple")
    )


def _given(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        return ""
    text = repr(value)
    return f" (got {text[:60]}{'…' if len(text) > 60 else ''})"


def _key_text(key: Any) -> str:
    """A mapping key as the YAML that produced it (``yes`` loads as ``True``)."""
    if isinstance(key, bool):
        return f"{str(key).lower()} (YAML reads yes, no, on and off as booleans)"
    if key is None:
        return "null"
    text = key.isoformat() if hasattr(key, "isoformat") else str(key)
    return text[:60] + ("…" if len(text) > 60 else "")


def _key_error(path: Path, first: Any) -> str | None:
    """A mapping key that is not text (``yes:``, ``1:``, a date), named as the user wrote it."""
    raw = tuple(first["loc"])
    if first["type"] == "invalid_key":
        key, parent = first["input"], raw[:-1]
    elif raw[-1:] == ("[key]",) and len(raw) >= 2:
        key, parent = first["input"], raw[:-2]
    else:
        return None
    where = dotted(tuple(p for p in parent if not _tag(p)))
    field = f"field '{where}'" if where else "top level"
    return " ".join(
        f"{path}: {field}: key {_key_text(key)} is not text; quote it, or fix the name".split()
    )


def format_validation_error(path: Path, error: ValidationError) -> str:
    """One line from pydantic's first error: ``file: field 'a[0].b': message (got x)``."""
    errors = error.errors()
    first = errors[0]
    keyed = _key_error(path, first)
    if keyed is not None:
        return keyed
    loc = tuple(p for p in first["loc"] if not _tag(p))
    messages = [first["msg"]]
    for other in errors[1:]:  # a union's members fail at the same field: say each
        if tuple(p for p in other["loc"] if not _tag(p)) == loc and other["msg"] not in messages:
            messages.append(other["msg"])
    msg = ", or ".join(m.removeprefix("Value error, ") for m in messages)
    ctx = first.get("ctx") or {}
    inner = ctx.get("path", "") if first["type"] == "number" else ""
    where = dotted(loc)
    if inner:
        where = f"{where}.{inner}" if where and not inner.startswith("[") else where + inner
    given = "" if first["type"] in ("number", "value_error", "missing") else _given(first["input"])
    field = f"field '{where}'" if where else "top level"
    return " ".join(f"{path}: {field}: {msg}{given}".split())
