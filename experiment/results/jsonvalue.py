"""JSON-ready values: what every results file writer hands ``json.dumps``.

JSON has no NaN or infinity: an undefined number is ``null`` in every file seglift
writes (results.json, proposals.json, sums.parquet metadata, model sidecars).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["json_ready"]


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities (at any depth) as ``None``, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
