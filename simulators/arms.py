"""Arms of many simulated customers, hashed in DuckDB: the plain layout of ``assign_many``.

:func:`experiment.assignment.assign_many` hashes one user at a time in Python
(MD5 through ``hashlib``), about 1 µs of interpreter per customer; here DuckDB's
``md5`` hashes the whole id column at once, on all cores, and returns the first 8
hex digits as an integer, so ``bucket = int(digest[0:8], 16) / 2**32`` is the
same number and the arms are identical (``tests/simulators/test_arms.py``).
The salt is a bound parameter, never SQL text. A run hashes on the connection it
later evaluates the segments on (:func:`simulators.masks.connect`): one connection
to open instead of two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

if TYPE_CHECKING:
    import ibis

__all__ = ["arm_index"]

_BUCKET_SQL = "SELECT ('0x' || left(md5(? || ':' || user_id), 8))::UBIGINT AS h FROM simulated_ids"


def arm_index(
    ids: pa.Array,
    *,
    salt: str,
    arms: Mapping[str, float],
    con: ibis.BaseBackend | None = None,
) -> NDArray[np.intp]:
    """Each customer's arm, an index into ``arms`` (arms own consecutive bucket ranges).

    Args:
        ids: User ids (strings).
        salt: The experiment's assignment salt.
        arms: Arm names to weights > 0, in file order.
        con: An Ibis DuckDB connection to hash on (left open); None opens and closes one.

    Returns:
        The index of each customer's arm in ``list(arms)``.
    """
    import ibis

    weights = np.asarray(list(arms.values()), dtype=np.float64)
    edges = np.cumsum(weights / weights.sum())[:-1]  # as experiment.assignment._edges
    own = con is None
    engine = ibis.duckdb.connect() if con is None else con
    try:
        ids_table = ibis.memtable(pa.table({"user_id": ids}))
        engine.create_view("simulated_ids", ids_table, overwrite=True)  # a view: no copy
        hashed = engine.raw_sql(_BUCKET_SQL, parameters=[salt]).fetchnumpy()["h"]
    finally:
        if own:
            engine.disconnect()
    buckets = np.asarray(hashed, dtype=np.float64) / float(2**32)
    index: NDArray[np.intp] = np.searchsorted(edges, buckets, side="right").astype(np.intp)
    return index
