"""Values a results.json cannot hold although their types are right.

A hand-edited or foreign file may pass the type check (:mod:`experiment.results.schema`)
with an alpha of 5, a control arm that is not an arm, a negative count or a p-value of
7; the report would draw it without a complaint. One line names the first such field.
"""

from __future__ import annotations

from typing import Any

__all__ = ["value_problem"]


def value_problem(doc: dict[str, Any], *, newest: int) -> str | None:
    """The first value a results.json of ``exp analyze`` cannot hold, or ``None``.

    ``doc`` has passed the type check; ``newest`` is the schema version this
    seglift writes (a newer file may mean something else by its fields).
    """
    alpha, arms, control = doc.get("alpha", 0.05), doc.get("arms") or [], doc["control"]
    version = doc.get("schema_version") or newest
    if version > newest:
        return (
            f"field 'schema_version': {version} is newer than this seglift reads "
            f"({newest}); upgrade seglift"
        )
    if alpha is not None and not 0 < alpha < 1:
        return f"field 'alpha': {alpha} is not between 0 and 1"
    if arms and control not in arms:
        return f"field 'control': {control!r} is not one of the arms {arms}"
    rows = (_row_problem(f"results[{i}]", row, arms) for i, row in enumerate(doc["results"]))
    return next((p for p in rows if p is not None), None)


def _row_problem(where: str, row: dict[str, Any], arms: list[str]) -> str | None:
    if arms and row["arm"] not in arms:
        return f"field '{where}.arm': {row['arm']!r} is not one of the arms {arms}"
    for name in ("n_control", "n_treatment"):
        if (row.get(name) or 0) < 0:
            return f"field '{where}.{name}': a count cannot be negative"
    for name in ("p_value", "p_adjusted"):
        value = row.get(name)
        if value is not None and not 0 <= value <= 1:
            return f"field '{where}.{name}': {value} is not a probability (0 to 1)"
    return None
