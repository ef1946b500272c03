"""The rows of one simulated day: collected from every arm's world, packed and put in time order.

While a day is built (:func:`simulators.journeys.simulate_day`), each event kind
is added to a :class:`DayRows`: its events are counted in every arm's world (the
potential outcomes) and only the assigned world's rows are kept. At the end the
rows are packed (user, event, channel and revenue row in one int64), sorted by
time once and returned as :class:`DayEvents`. The packed layout bounds the
customers of a run (:data:`MAX_USERS`) and the channels of a scenario
(:data:`MAX_CHANNELS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from simulators.schema import EVENTS, TIMESTAMP, events_schema

if TYPE_CHECKING:
    from simulators.outcomes import PotentialOutcomes
    from simulators.population import Traits

__all__ = ["MAX_CHANNELS", "MAX_USERS", "DayEvents", "DayRows", "World", "take_ids", "time_order"]

_INDEX_BITS = 26  # events per day < 2**26; µs of a day < 2**37; 26 + 37 = 63 bits
_USER_MASK = (1 << 27) - 1  # packed rows: user 27 bits | event 4 | channel 4 | revenue row 28
MAX_USERS = 1 << 27
"""Most customers one run can hold (the packed row layout of a day)."""
MAX_CHANNELS = 16
"""Most session channels a scenario can list (4 bits in the packed row layout)."""
_CODE = {name: np.int8(i) for i, name in enumerate(EVENTS)}

World = NDArray[np.bool_] | None
"""Per arm and row, whether an event exists in that arm's world (None: in every world)."""


def take_ids(ids: pa.Array, rows: NDArray[np.integer]) -> pa.Array:
    """``ids.take(rows)`` for a string array; a numpy gather when every id has one width.

    The ids of :func:`simulators.history.user_ids` are fixed-width, so their bytes
    are a matrix whose rows can be gathered as one fixed-size numpy type (``uint64``
    for 8-byte ids): about twice as fast as Arrow's variable-length ``take``.
    """
    _, offsets_buffer, data = ids.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, len(ids) + 1, offset=4 * ids.offset)
    width = int(offsets[1] - offsets[0]) if len(ids) else 0
    if ids.null_count or width == 0 or offsets[-1] - offsets[0] != width * len(ids):
        return ids.take(pa.array(rows))
    kind = np.uint64 if width == 8 else np.dtype(f"V{width}")
    text = np.frombuffer(data, kind, len(ids), offset=int(offsets[0]))
    out = np.arange(0, (rows.size + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(rows.size, pa.py_buffer(out), pa.py_buffer(text[rows]))


@dataclass(frozen=True)
class DayEvents:
    """The observed events of one day, sorted by time; ``revenue`` is NaN off purchases.

    ``event`` and ``channel`` are codes into :data:`simulators.schema.EVENTS` and the
    profile's channel names.
    """

    user: NDArray[np.int32]
    ts: NDArray[np.int64]
    event: NDArray[np.int8]
    channel: NDArray[np.int8]
    revenue: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.user.size)

    def to_arrow(
        self, *, user_ids: pa.Array, traits: Traits, channels: tuple[str, ...]
    ) -> pa.Table:
        """The events table rows; ``event``, ``channel`` and ``device`` dictionary-encoded.

        No Python strings are made per row: names are codes into a small dictionary,
        and user ids are taken from the customers' id array. Parquet keeps the
        dictionaries; readers (DuckDB, pyarrow) see plain strings.
        """
        device = traits.device.astype(np.int8)[self.user]
        columns = [
            take_ids(user_ids, self.user),
            pa.array(self.ts, pa.int64()).cast(TIMESTAMP),
            pa.DictionaryArray.from_arrays(pa.array(self.event), pa.array(EVENTS, pa.string())),
            pa.DictionaryArray.from_arrays(pa.array(self.channel), pa.array(channels, pa.string())),
            pa.DictionaryArray.from_arrays(
                pa.array(device), pa.array(traits.device_names, pa.string())
            ),
            pa.array(self.revenue, pa.float64(), from_pandas=True),
        ]
        return pa.Table.from_arrays(columns, schema=events_schema(c.type for c in columns))


@dataclass(kw_only=True)
class DayRows:
    """Observed rows and potential-outcome counts collected while a day is built.

    Not frozen: it is the accumulator of one day, filled step by step by
    :func:`simulators.journeys.simulate_day` and read once by :meth:`concat`.

    Attributes:
        arm: Index of each customer's assigned arm.
        outcomes: Potential outcomes, updated in place as events are added.
        parts: Per added event kind: users, timestamps, event code and channels of
            the observed rows.
        revenue: Where the purchase rows start among the parts' rows, and their
            observed order values; None until purchases are added.
    """

    arm: NDArray[np.intp]
    outcomes: PotentialOutcomes
    parts: list[tuple[NDArray[np.intp], NDArray[np.int64], np.int8, NDArray[np.int8]]]
    revenue: tuple[int, NDArray[np.float64]] | None = None

    def add(
        self,
        name: str,
        user: NDArray[np.intp],
        world: World,
        ts: NDArray[np.int64],
        channel: NDArray[np.int8],
    ) -> NDArray[np.bool_] | None:
        """Count the events in every world and keep those of the assigned world."""
        if world is None:
            self.outcomes.add_events(name, user)
            seen = None
        else:
            for a in range(world.shape[0]):
                self.outcomes.add_events(name, user[world[a]], arm=a)
            seen = world[self.arm[user], np.arange(user.size)]
            user, ts, channel = user[seen], ts[seen], channel[seen]
        self.parts.append((user, ts, _CODE[name], channel))
        return seen

    def add_purchases(
        self,
        user: NDArray[np.intp],
        world: World,
        ts: NDArray[np.int64],
        channel: NDArray[np.int8],
        value: NDArray[np.float64],
    ) -> None:
        """Add the purchases with their order value in every world, shape ``(n_arms, n)``.

        Counts the purchases and their revenue in every world and keeps the rows
        (and order values) of the assigned world; purchases are added once a day.
        """
        offset = sum(p[0].size for p in self.parts)
        seen = self.add("purchase", user, world, ts, channel)
        _count_revenue(self.outcomes, user, world, value)
        observed = value[self.arm[user], np.arange(user.size)]
        self.revenue = (offset, observed if seen is None else observed[seen])

    def concat(self, day_end: int, *, ordered: bool = True) -> DayEvents:
        """All rows in time order; user, event, channel and revenue row travel packed in one int64.

        One gather of the packed column by the sort order replaces four (a day at 1M
        users has ~3M rows, and random gathers are what a day's sort costs). With
        ``ordered=False`` the rows stay in the order they were built (no sort).
        """
        ts, packed = self._packed(day_end)
        amounts: NDArray[np.float64] = np.empty(0)
        if self.revenue is not None:
            offset, amounts = self.revenue
            rows = slice(offset, offset + amounts.size)
            packed[rows] |= np.arange(1, amounts.size + 1, dtype=np.int64) << 35
        if ordered:
            order, ts = time_order(ts)
            packed = packed[order]
        # unpacked with in-place shifts and casting writes: few passes, few temporaries
        user = np.empty(ts.size, dtype=np.int32)
        np.bitwise_and(packed, _USER_MASK, out=user, casting="unsafe")
        event, channel = np.empty(ts.size, dtype=np.int8), np.empty(ts.size, dtype=np.int8)
        packed >>= 27
        np.bitwise_and(packed, 15, out=event, casting="unsafe")
        packed >>= 4
        np.bitwise_and(packed, 15, out=channel, casting="unsafe")
        packed >>= 4  # the revenue row
        revenue = np.full(ts.size, np.nan)
        has = np.flatnonzero(packed)
        revenue[has] = amounts[packed[has] - 1]
        return DayEvents(user=user, ts=ts, event=event, channel=channel, revenue=revenue)

    def _packed(self, day_end: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Timestamps and packed rows (user | event << 27 | channel << 31), part by part."""
        n = sum(p[0].size for p in self.parts)
        ts, packed = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        start = 0
        for user, when, code, channel in self.parts:
            end = start + user.size
            # a session late in the day may run past midnight: keep its events in the day
            np.minimum(when, day_end - 1, out=ts[start:end])
            part = packed[start:end]
            np.left_shift(channel, 31, out=part, dtype=np.int64)
            part |= user
            part |= int(code) << 27
            start = end
        return ts, packed


def time_order(ts: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The stable sort order of ``ts`` (one day's timestamps) and the sorted timestamps.

    Two steps, both linear or nearly so on this CPU, where numpy's ``sort`` has no
    SIMD kernel (~65 ns per row of a 3M-row day): a stable radix argsort of the
    top 16 bits (numpy sorts 16-bit keys by radix) puts the rows in buckets of ~1/65,536
    of the day, then a stable sort (timsort, which finds the buckets' nearly sorted
    runs) of the unique ``(ts << 26) | index`` keys orders each bucket. The order is
    the stable argsort's, ~30% faster (``benchmarks/simulate.py``).
    """
    low, high = (int(ts.min()), int(ts.max())) if ts.size else (0, 0)
    span = high - low
    if ts.size >= 1 << _INDEX_BITS or span >= 1 << (63 - _INDEX_BITS):  # not one day's rows
        order: NDArray[np.int64] = np.argsort(ts, kind="stable")
        return order, ts[order]
    shift = max(0, span.bit_length() - 16)
    bucket = np.subtract(ts, low)
    bucket >>= shift
    by_bucket = np.argsort(bucket.astype(np.uint16), kind="stable")
    del bucket  # a day's arrays are large: hold as few at once as possible
    key = ts[by_bucket]
    key -= low
    key <<= _INDEX_BITS
    key |= by_bucket  # row indices < 2**26: unique keys, ties broken by row
    del by_bucket
    key.sort(kind="stable")
    order = key & ((1 << _INDEX_BITS) - 1)
    key >>= _INDEX_BITS
    key += low
    return order, key


def _count_revenue(
    outcomes: PotentialOutcomes, user: NDArray[np.intp], world: World, value: NDArray[np.float64]
) -> None:
    for a in range(value.shape[0]):
        keep = slice(None) if world is None else world[a]
        outcomes.add_revenue(a, user[keep], value[a, keep])
