"""Arms of many simulated customers, hashed in DuckDB: the plain layout of ``assign_many``.

:func:`experiment.assignment.assign_many` hashes one user at a time in Python
(MD5 through ``hashlib``), about 1 µs of interpreter per customer; here DuckDB's
``md5`` hashes the whole id column at once, on all cores, and returns the first 8
hex digits as an integer, so ``bucket = int(digest[0:8], 16) / 2**32`` is the
same number and the arms are identical (``tests/simulators/test_arms.py``).
The salt is a bound parameter, never SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

__all__ = ["arm_index"]

_BUCKET_SQL = "SELECT ('0x' || left(md5(? || ':' || user_id), 8))::UBIGINT AS h FROM ids"


def arm_index(ids: pa.Array, *, salt: str, arms: Mapping[str, float]) -> NDArray[np.intp]:
    """Each customer's arm, an index into ``arms`` (arms own consecutive bucket ranges).

    Args:
        ids: User ids (strings).
        salt: The experiment's assignment salt.
        arms: Arm names to weights > 0, in file order.

    Returns:
        The index of each customer's arm in ``list(arms)``.
    """
    import duckdb

    weights = np.asarray(list(arms.values()), dtype=np.float64)
    edges = np.cumsum(weights / weights.sum())[:-1]  # as experiment.assignment._edges
    con = duckdb.connect()
    try:
        con.register("ids", pa.table({"user_id": ids}))
        hashed = con.execute(_BUCKET_SQL, [salt]).fetchnumpy()["h"]
    finally:
        con.close()
    buckets = np.asarray(hashed, dtype=np.float64) / float(2**32)
    index: NDArray[np.intp] = np.searchsorted(edges, buckets, side="right").astype(np.intp)
    return index
