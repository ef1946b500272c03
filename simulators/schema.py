"""The simulated dataset's tables: event names and Arrow schemas of the data contract."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final

import pyarrow as pa

__all__ = [
    "ASSIGNMENTS_SCHEMA",
    "CUSTOMERS_SCHEMA",
    "EVENTS",
    "EVENTS_SCHEMA",
    "TIMESTAMP",
    "VALUE_COLUMNS",
    "events_schema",
    "to_micros",
]

EVENTS: Final = (
    "session",
    "login",
    "page_view",
    "pricing_view",
    "feature_use",
    "premium_feature_use",
    "impression",
    "click",
    "add_to_cart",
    "purchase",
)
"""Event names; their index is the event code used internally and in the Parquet dictionary.

``pricing_view`` is a page view of the pricing page (not also counted as ``page_view``);
``impression`` is a recommendation, message or ad shown on one of the channels; a
cart abandonment is an ``add_to_cart`` without a ``purchase`` from the same impression.
"""

VALUE_COLUMNS: Final = ("revenue",)
"""Numeric event columns a metric may sum."""

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")

CUSTOMERS_SCHEMA: Final = pa.schema(
    [
        ("user_id", pa.string()),
        ("signup_at", TIMESTAMP),
        # demographic / firmographic
        ("country", pa.string()),
        ("age_band", pa.string()),
        ("company_size", pa.string()),
        ("plan", pa.string()),
        # contextual
        ("device", pa.string()),
        ("channel", pa.string()),
        # psychographic
        ("interest", pa.string()),
        ("price_sensitivity", pa.float64()),
        # behavioural and transactional, derived from the pre-period
        ("loyalty_tier", pa.string()),
        ("logins_7d", pa.int64()),
        ("days_since_last_login", pa.int64()),
        ("sessions_30d", pa.int64()),
        ("impressions_30d", pa.int64()),
        ("clicks_30d", pa.int64()),
        ("feature_uses_30d", pa.int64()),
        ("premium_feature_uses_30d", pa.int64()),
        ("orders_90d", pa.int64()),
        ("revenue_90d", pa.float64()),
        ("cart_abandons_30d", pa.int64()),
        ("pricing_page_views_30d", pa.int64()),
    ]
)

EVENTS_SCHEMA: Final = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("revenue", pa.float64()),  # null off purchases
    ]
)
"""The events table as readers see it. Only ``revenue`` has nulls; the other columns
are ``required`` in Parquet, which spares the writer their definition levels (~15%
of its time, ``benchmarks/simulate.py``)."""


def events_schema(types: Iterable[pa.DataType]) -> pa.Schema:
    """:data:`EVENTS_SCHEMA` with the columns' types as built (dictionary-encoded names).

    Examples:
        >>> events_schema([pa.string()] * 6).field("ts").type
        DataType(string)
    """
    return pa.schema([field.with_type(t) for field, t in zip(EVENTS_SCHEMA, types, strict=True)])


ASSIGNMENTS_SCHEMA: Final = pa.schema(
    [
        ("user_id", pa.string()),
        ("experiment", pa.string()),
        ("arm", pa.string()),
        ("assigned_at", TIMESTAMP),
    ]
)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_micros(ts: dt.datetime) -> int:
    """Microseconds since the Unix epoch of a timezone-aware datetime.

    Examples:
        >>> to_micros(dt.datetime(1970, 1, 2, tzinfo=dt.UTC))
        86400000000
    """
    return (ts - _EPOCH) // dt.timedelta(microseconds=1)
