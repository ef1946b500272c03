"""JSON-ready values: what every results file writer hands ``json.dumps``, and back.

JSON has no NaN or infinity: an undefined number is ``null`` in every file seglift
writes (results.json, proposals.json, sums.parquet metadata, model sidecars), and
a reader turns it back into ``nan`` (:func:`field_value`).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["field_value", "json_ready"]


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities (at any depth) as ``None``, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def field_value(value: Any, typ: Any) -> Any:
    """A dataclass field's value from its JSON value, by the field's annotated type.

    ``null`` becomes ``nan`` for a float, 0 for an int, ``""`` for a string (a key an
    older file lacks reads as ``null``); lists become tuples for ``tuple[float, ...]``
    and ``tuple[str, ...]`` fields. Other values are returned as they are.
    """
    if typ in ("float", float):
        return math.nan if value is None else float(value)
    if typ in ("int", int):
        return 0 if value is None else int(value)
    if typ in ("bool", bool):
        return bool(value)
    if typ == "tuple[float, ...]":
        return tuple(math.nan if v is None else float(v) for v in value or ())
    if typ == "tuple[str, ...]":
        return tuple(str(v) for v in value or ())
    return "" if value is None else value
