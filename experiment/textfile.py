"""Bounded, safe reading of the YAML and JSON files users give: one place for every limit.

Every configuration file (experiment, segments, scenario) and every results.json
goes through here, so each hostile file fails the same way, with one line naming
the file: missing, a folder, a pipe or device (refused, never waited on),
unreadable, not UTF-8 (with the byte offset), larger than the size cap, nested
deeper than the depth cap (checked on the YAML event stream or the JSON brackets
*before* anything recursive runs, so a file nested 20,000 levels deep never
reaches a ``RecursionError``), a YAML alias bomb ("billion laughs", counted as
the nodes the aliases would expand to), a key given twice, or a top level that
is not a mapping. Non-finite numbers (``.nan``, ``.inf``) are rejected at any
depth with the dotted path of the field.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from itertools import accumulate
from pathlib import Path
from typing import Any

import yaml

from experiment.errors import ConfigError, SegliftError

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_BYTES",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "dotted",
    "parse_json",
    "read_json",
    "read_text",
    "read_yaml_mapping",
]

MAX_YAML_BYTES = 2 * 1024 * 1024  # 2 MiB: a hand-written file is far smaller
MAX_JSON_BYTES = 256 * 1024 * 1024  # 256 MiB: results.json of a large cross-segment run
MAX_DEPTH = 32  # the deepest real file (a scenario's population) nests 4 levels
MAX_YAML_NODES = 1_000_000  # after expanding aliases: a billion-laughs file stops here

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def read_text(path: Path, *, what: str, max_bytes: int, error: type[SegliftError]) -> str:
    """The UTF-8 text of a file of at most ``max_bytes``, or a one-line ``error``.

    Raises:
        SegliftError: (the ``error`` class) missing, a folder, not a regular file, unreadable, too
            large or not UTF-8; the message names the file.
    """
    path = Path(path)
    try:
        # Non-blocking, so a FIFO opens at once (and is refused below) instead of
        # waiting for a writer; the type is checked on the opened file, not the name.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise error(f"{path}: is a folder; give the {what} file itself")
        raise error(
            f"{path}: not a regular file (a pipe, device or socket); give the {what} file itself"
        )
    try:
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise error(f"{path}: the {what} file is larger than {_mib(max_bytes)}, the size cap")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise error(f"{path}: the {what} file is UTF-16; save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: the {what} file is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def dotted(path: tuple[str | int, ...]) -> str:
    """A field path as users write it: ``metrics[1].cap.value``.

    Examples:
        >>> dotted(("metrics", 1, "cap", "value"))
        'metrics[1].cap.value'
    """
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or ""
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character
        code = char if isinstance(char, int) else ord(str(char)[:1] or " ")
        problem = f"unacceptable character U+{code:04X}"
    position = getattr(exc, "position", None)
    if not where and position is not None:
        where = f" at character {position}"
    return f"{where}: {' '.join(str(problem).split())}" if problem else where


def _nodes(
    event: yaml.NodeEvent, sizes: dict[str, int], path: Path, error: type[SegliftError]
) -> int:
    """How many values a scalar or alias event stands for (aliases: their anchor's size)."""
    if isinstance(event, yaml.AliasEvent):
        if event.anchor not in sizes:
            raise error(f"{path}: alias *{event.anchor} refers to itself or to no anchor")
        return sizes[event.anchor]
    if event.anchor is not None:
        sizes[event.anchor] = 1
    return 1


def _check_events(text: str, path: Path, error: type[SegliftError]) -> None:
    """Depth, alias expansion and recursive aliases, on the event stream (no recursion)."""
    sizes: dict[str, int] = {}  # anchor -> values it expands to
    stack: list[list[Any]] = [[None, 0]]  # [anchor, values so far] per open collection
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_DEPTH + 1:
                line = f" (line {event.start_mark.line + 1})" if event.start_mark else ""
                raise error(f"{path}: nested more than {MAX_DEPTH} levels deep{line}")
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, grown = stack.pop()
            if anchor is not None:
                sizes[anchor] = grown
        elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            grown = _nodes(event, sizes, path, error)
        else:
            continue
        stack[-1][1] += grown
        if sum(s[1] for s in stack) > MAX_YAML_NODES:
            raise error(
                f"{path}: its aliases expand to more than {MAX_YAML_NODES:,} values "
                "(an alias bomb?); write the values out"
            )


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, dict | list):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """Bytes, sets and pairs fit no field: a set's order would even vary between runs."""
    short = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"the tag {short} is not accepted; write plain text, a list or a mapping",
        node.start_mark,
    )


for _tag in ("binary", "set", "omap", "pairs"):
    _UniqueKeyLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)


def _non_finite(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The path of the first NaN or infinity in a loaded document (depth is capped)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items: Any = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, item in items:
        found = _non_finite(item, (*path, key if isinstance(key, int) else str(key)))
        if found is not None:
            return found
    return None


def read_yaml_mapping(
    path: Path,
    *,
    what: str,
    error: type[SegliftError] = ConfigError,
    max_bytes: int = MAX_YAML_BYTES,
) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping, within every limit of this module.

    Raises:
        SegliftError: (``error``, by default :class:`ConfigError`) one line naming
            the file, and the line or field at fault.
    """
    text = read_text(path, what=what, max_bytes=max_bytes, error=error)
    try:
        _check_events(text, path, error)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML{_yaml_problem(exc)}") from None
    if data is None:
        raise error(f"{path}: the {what} file is empty; it must be a YAML mapping of fields")
    if not isinstance(data, dict):
        found = type(data).__name__.replace("str", "text").replace("list", "a list")
        raise error(f"{path}: the {what} file must be a YAML mapping of fields, not {found}")
    bad = _non_finite(data)
    if bad is not None:
        raise error(
            f"{path}: field '{dotted(bad)}': not a finite number (.nan or .inf); "
            "write a finite number"
        )
    return data


def _json_depth(text: str) -> int:
    """How deep a JSON text nests, from its brackets outside strings (no recursion)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _finite_float(text: str) -> float:
    """A JSON number as a float; one beyond the float range (``1e400``) is refused."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is beyond the range of a float")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; write null")


def read_json(
    path: Path, *, what: str, error: type[SegliftError], max_bytes: int = MAX_JSON_BYTES
) -> Any:
    """Read a strict JSON file (no NaN/Infinity, no repeated key) within the limits.

    Raises:
        SegliftError: (``error``) one line naming the file and what is wrong.
    """
    text = read_text(path, what=what, max_bytes=max_bytes, error=error)
    return parse_json(text, source=str(path), what=what, error=error)


def parse_json(text: str, *, source: str, what: str, error: type[SegliftError]) -> Any:
    """Parse strict JSON text (a file's, or metadata's) within the depth limit.

    Raises:
        SegliftError: (``error``) one line naming ``source`` and what is wrong.
    """
    depth = _json_depth(text)
    if depth > MAX_DEPTH:
        raise error(
            f"{source}: nested {depth} levels deep; a {what} file nests at most {MAX_DEPTH}"
        )
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_pairs,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise error(
            f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise error(f"{source}: not valid JSON: {exc}") from None
