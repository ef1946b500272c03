"""Per user, the window's logins and purchases in two grouped scans (the lifecycle counts' input).

The login events of the window are grouped by user into a bit mask (day ``k`` of
the window is bit ``k % 62`` of word ``k // 62``, a ``BIT_OR``); the purchases,
joined to the users' assignment, into the first purchase's day after assignment
and the spend of the two half-windows. Recency,
the last login before a day and the lapse time are then arithmetic on the mask,
per row, with one term per day of the window: no window function, no sort, and
no Python loop over users (README "Lifecycle analysis").
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from experiment.engine.moments import stable_sum
from experiment.errors import ConfigError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.engine.dataset import Dataset
    from experiment.lifecyclespec import LifecycleAnalysis

__all__ = ["WORD", "lapse_time", "last_login_before", "login_masks", "per_user_events"]

WORD = 62  # days per mask word (bits of a signed 64-bit integer, with room to spare)
_DAY_S = 86_400


def _days(ts: ir.TimestampValue, origin: dt.datetime | ir.TimestampValue) -> ir.IntegerValue:
    """Whole days from ``origin`` to ``ts`` (floor)."""
    start: Any = origin.timestamp() if isinstance(origin, dt.datetime) else origin.epoch_seconds()
    day: ir.IntegerValue = ((ts.epoch_seconds() - start) / _DAY_S).floor()
    return day.cast("int64")


def per_user_events(
    dataset: Dataset,
    units: ir.Table,
    spec: LifecycleAnalysis,
    *,
    start: dt.datetime,
    window: int,
) -> tuple[ir.Table, ir.Table]:
    """Per user: the login mask words ``__w{i}__``; per analysed buyer: ``first``, ``y1``, ``y2``.

    Two grouped scans, each with its event and time filter pushed into the read:
    the logins of the window by user (a ``BIT_OR``, no join), and the purchases
    joined to the users' assignment. ``first`` is the day (after the user's
    assignment, floor) of the first purchase at or after it; ``y1``, ``y2`` sum the
    value of purchases in ``[0, W/2)`` and ``[W/2, W)`` days after assignment.
    """
    events = dataset.events
    if spec.value not in events.columns:
        raise ConfigError(
            f"lifecycle_analysis.value: the events table has no column {spec.value!r} to sum; "
            f"columns are: {', '.join(events.columns)}"
        )
    end = start + dt.timedelta(days=window)
    e = events.filter((events.event == spec.login_event) & (events.ts >= start) & (events.ts < end))
    e = e.select(user_id=e.user_id.cast("string"), k=_days(e.ts, start))
    logins = login_masks(dataset, e, window)
    p = events.filter((events.event == spec.purchase_event) & (events.ts < end))
    p = p.select(user_id=p.user_id.cast("string"), ts=p.ts, value=p[spec.value].cast("float64"))
    j = p.join(units.select("user_id", "assigned_at"), "user_id")
    j = j.filter(j.ts >= j.assigned_at)
    seconds = j.ts.epoch_seconds() - j.assigned_at.epoch_seconds()
    half = window * _DAY_S / 2
    value = j.value.fill_null(0.0)
    buys = j.group_by("user_id").aggregate(
        first=_days(j.ts, j.assigned_at).min(),
        y1=stable_sum(value, where=seconds < half),
        y2=stable_sum(value, where=(seconds >= half) & (seconds < 2 * half)),
    )
    return logins, buys


def login_masks(dataset: Dataset, e: ir.Table, window: int) -> ir.Table:
    """Per user, the login days ``k`` of ``e`` as bit-mask words (``BIT_OR``).

    Engines whose Ibis compiler has no ``BIT_OR`` (Spark) sum the bits of the
    distinct (user, day) pairs instead, the same number.
    """
    import ibis
    from ibis.common.exceptions import OperationNotDefinedError

    one = ibis.literal(1, "int64")
    words = range((window + WORD - 1) // WORD)

    def bits(t: ir.Table, w: int) -> ir.IntegerValue:
        return ibis.ifelse(t.k // WORD == w, one << (t.k % WORD), 0)

    masks = e.group_by("user_id").aggregate(**{f"__w{w}__": bits(e, w).bit_or() for w in words})
    try:
        dataset.con.compile(masks)
    except OperationNotDefinedError:
        d = e.distinct()
        masks = d.group_by("user_id").aggregate(**{f"__w{w}__": bits(d, w).sum() for w in words})
    return masks


def _any_login(t: ir.Table, lo: int, hi: int) -> ir.BooleanValue:
    """Whether the user logged in on a day of ``[lo, hi)`` (days of the window, ``lo >= 0``)."""
    import ibis

    out: Any = ibis.literal(False)
    for w in range(lo // WORD, (hi - 1) // WORD + 1):
        a, b = max(lo, w * WORD) - w * WORD, min(hi, (w + 1) * WORD) - w * WORD
        bits = ((1 << b) - 1) ^ ((1 << a) - 1)
        out = out | ((t[f"__w{w}__"] & bits) != 0)
    return out


def last_login_before(t: ir.Table, d: int) -> ir.IntegerValue:
    """The last login day ``k < d`` of the window (null without one), a ``CASE`` from ``d - 1``."""
    import ibis

    if d <= 0:
        return ibis.null("int64")
    cases = [(_any_login(t, k, k + 1), k) for k in range(d - 1, -1, -1)]
    return ibis.cases(*cases, else_=ibis.null("int64"))


def lapse_time(t: ir.Table, r0: ir.IntegerValue, at_risk_days: int, window: int) -> ir.IntegerValue:
    """The first ``t = 1..W`` with recency ``>= at_risk_days`` as of ``start + t``.

    Recency reaches the threshold at ``t`` exactly when there is no login on the days
    ``[t - A, t)`` of the window and, for ``t < A`` (the start's recency still counts),
    ``r0 + t >= A``. Without one: ``window + 1``, past any follow-up.
    """
    import ibis

    cases = []
    for day in range(1, window + 1):
        quiet = ~_any_login(t, max(0, day - at_risk_days), day)
        cases.append((quiet if day >= at_risk_days else quiet & (r0 + day >= at_risk_days), day))
    return ibis.cases(*cases, else_=window + 1)
