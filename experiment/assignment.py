"""Deterministic hash assignment of users to arms.

``bucket = int(md5(f"{salt}:{user_id}")[:8], 16) / 2**32`` is uniform on [0, 1);
arms own consecutive ranges of it in file order, sized by their weights. MD5 is
chosen because the same function exists in Python's ``hashlib`` and in DuckDB,
Spark, BigQuery and Snowflake, so one user at request time and millions in the
engine get the same arm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

__all__ = ["assign", "assign_many", "bucket"]

_SCALE = float(2**32)


def bucket(user_id: str, *, salt: str) -> float:
    """The user's position in [0, 1) for this salt.

    Examples:
        >>> round(bucket("user-1", salt="winback"), 6)
        0.707668
    """
    digest = hashlib.md5(f"{salt}:{user_id}".encode()).hexdigest()
    return int(digest[:8], 16) / _SCALE


def _edges(arms: Mapping[str, float]) -> NDArray[np.float64]:
    weights = np.asarray(list(arms.values()), dtype=np.float64)
    if weights.size == 0 or np.any(weights <= 0):
        raise ValueError("arms must map at least one arm name to a weight > 0.")
    return np.cumsum(weights / weights.sum())[:-1]


def assign(user_id: str, *, salt: str, arms: Mapping[str, float]) -> str:
    """The arm of one user.

    Examples:
        >>> assign("user-1", salt="winback", arms={"control": 0.5, "treatment": 0.5})
        'treatment'
    """
    index = int(np.searchsorted(_edges(arms), bucket(user_id, salt=salt), side="right"))
    return list(arms)[index]


def assign_many(
    user_ids: Iterable[str], *, salt: str, arms: Mapping[str, float]
) -> NDArray[np.str_]:
    """Arms of many users, identical to calling :func:`assign` on each."""
    buckets = np.fromiter((bucket(u, salt=salt) for u in user_ids), dtype=np.float64)
    index = np.searchsorted(_edges(arms), buckets, side="right")
    return np.asarray(list(arms), dtype=np.str_)[index]
