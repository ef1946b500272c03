"""The balance covariates' sums in sums.parquet: JSON grids in its key-value metadata.

``CellSums.balance`` (per pre-exposure covariate, its count, mean and centred sum
of squares per (segment, arm)) is small: it travels in the ``seglift.sums``
metadata under ``balance`` rather than as rows of the long table, whose rows are
metrics. JSON keeps every float64 exactly (shortest round-trip repr); ``nan`` is
``null``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from experiment.sums import MeanSums

__all__ = ["balance_from_json", "balance_to_json"]

_PARTS = ("n", "mean", "m2")


def _value(v: float) -> float | None:
    return v if math.isfinite(v) else None


def balance_to_json(balance: dict[str, MeanSums]) -> dict[str, Any]:
    """Each covariate's ``n``, ``mean`` and ``m2`` as lists of (segment, arm) rows."""
    return {
        name: {
            part: [[_value(float(v)) for v in row] for row in getattr(sums, part).tolist()]
            for part in _PARTS
        }
        for name, sums in balance.items()
    }


def balance_from_json(doc: Any) -> dict[str, MeanSums]:
    """The sums of :func:`balance_to_json`; ``None`` (older files) gives none.

    Raises:
        TypeError, ValueError, KeyError: the block is malformed.
    """
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise TypeError("'balance' must be an object")
    out: dict[str, MeanSums] = {}
    for name, grids in doc.items():
        parts = {
            part: np.array(
                [[math.nan if v is None else float(v) for v in row] for row in grids[part]],
                dtype=np.float64,
            )
            for part in _PARTS
        }
        out[str(name)] = MeanSums(**parts)
    return out
