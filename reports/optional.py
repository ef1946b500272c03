"""Defensive access to optional results fields that may be absent, dicts or dataclasses.

Fields such as ``srm.segments``, ``data_quality`` and a row's ``suppressed`` are
added by analysis steps that may not have run; older results.json files lack them.
"""

from __future__ import annotations

__all__ = ["field_of", "items_of"]


def field_of(item: object, key: str, default: object = None) -> object:
    """``item[key]`` for a dict (raw JSON) or ``item.key`` for an object, else ``default``."""
    if isinstance(item, dict):
        return item.get(key, default)
    return getattr(item, key, default)


def items_of(item: object, key: str) -> list[object]:
    """A list-valued field as a list (empty when missing or null)."""
    value = field_of(item, key)
    return list(value) if isinstance(value, list | tuple) else []
