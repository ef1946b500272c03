"""The names of the three contract tables in an engine: ``crm.customers``, ``web.events``, ...

A name is a dotted identifier: ``table``, ``database.table`` or
``catalog.database.table``, each part a letter or ``_`` then letters, digits or
``_``. Nothing else is accepted, so a name from a user's file or command line
can be handed to Ibis (``con.table(name, database=...)``) and never needs quoting
or SQL formatting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ROLES", "TableNames", "check_table_name", "split_table_name", "table_names"]

ROLES = ("customers", "events", "assignments")
"""The contract tables, in the order commands read them."""

_PART = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
_NAME = re.compile(rf"{_PART}(\.{_PART}){{0,2}}")


@dataclass(frozen=True, kw_only=True)
class TableNames:
    """Where each contract table lives in an engine (default: its own name)."""

    customers: str = "customers"
    events: str = "events"
    assignments: str = "assignments"

    def __post_init__(self) -> None:
        """Every name is a dotted identifier (``ValueError`` otherwise)."""
        for role in ROLES:
            check_table_name(getattr(self, role))

    def of(self, role: str) -> str:
        """The engine name of contract table ``role``."""
        return str(getattr(self, role))


def check_table_name(name: object) -> str:
    """``name`` when it is a dotted identifier; else ``ValueError`` saying what is valid."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
        raise ValueError(
            f"table name {shown} is not a dotted identifier; write table, database.table or "
            "catalog.database.table (letters, digits and _, not starting with a digit)"
        )
    return name


def split_table_name(name: str) -> tuple[str, str | tuple[str, str] | None]:
    """``(table, database)`` as Ibis's ``con.table(table, database=...)`` takes them."""
    parts = check_table_name(name).split(".")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:  # database.table
        return parts[1], parts[0]
    return parts[2], (parts[0], parts[1])


def table_names(mapping: Mapping[str, object] | None) -> TableNames:
    """A ``{customers: ..., events: ..., assignments: ...}`` mapping, checked.

    Raises:
        ValueError: an unknown role or a name that is not a dotted identifier.
    """
    if not mapping:
        return TableNames()
    unknown = sorted(str(k)[:40] for k in mapping if k not in ROLES)
    if unknown:
        raise ValueError(f"unknown table {unknown[0]!r}; the tables are {', '.join(ROLES)}")
    return TableNames(**{role: check_table_name(name) for role, name in mapping.items()})
