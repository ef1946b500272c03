"""Ibis's SQL compilers loaded one at a time, as a backend asks for its own.

``ibis.backends.sql.compilers`` imports all twenty of Ibis's SQL compilers, and
with them sqlglot's dialects, the first time any backend connects: about 0.1 s of
CPU at every start, where an analysis on a folder needs DuckDB's compiler alone.
:func:`lazy_compilers` registers in its place, before Ibis loads it, a module
that loads each compiler (and each submodule) on first access (PEP 562's module
``__getattr__``), so that Spark's, PostgreSQL's or Snowflake's still load when
asked for. It does so only when the package is exactly what Ibis 10-12 ship (a
``__all__`` and one ``from .x import XCompiler`` per name, nothing else); for any
other form, or once the package is loaded, it does nothing and Ibis loads it as
usual.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

__all__ = ["compiler_modules", "lazy_compilers"]

_PACKAGE = "ibis.backends.sql.compilers"


def lazy_compilers() -> None:
    """Make ``ibis.backends.sql.compilers`` load its compilers on first access."""
    if _PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None or not spec.submodule_search_locations:
        return  # pragma: no cover - not the package Ibis ships
    names = compiler_modules(Path(spec.origin).read_text(encoding="utf-8"))
    if names is None:
        return  # pragma: no cover - another Ibis: loaded as usual
    module = importlib.util.module_from_spec(spec)
    module.__all__ = sorted(names)  # type: ignore[attr-defined]
    setattr(module, "__getattr__", _loader(module, names))  # noqa: B010 - PEP 562
    sys.modules[_PACKAGE] = module
    parent, _, child = _PACKAGE.rpartition(".")
    setattr(sys.modules[parent], child, module)


def _loader(module: ModuleType, names: dict[str, str]) -> Callable[[str], object]:
    """The module's ``__getattr__``: a compiler class by name, or a submodule."""

    def __getattr__(attr: str) -> object:
        if attr in names:
            value = getattr(importlib.import_module(f"{_PACKAGE}.{names[attr]}"), attr)
        elif attr.startswith("__"):
            raise AttributeError(attr)
        else:
            try:
                value = importlib.import_module(f"{_PACKAGE}.{attr}")
            except ModuleNotFoundError:
                raise AttributeError(f"module {_PACKAGE!r} has no attribute {attr!r}") from None
        setattr(module, attr, value)
        return value

    return __getattr__


def compiler_modules(source: str) -> dict[str, str] | None:
    """Each exported compiler's submodule, if the package only imports and lists them."""
    exported: list[str] | None = None
    found: dict[str, str] = {}
    body = ast.parse(source).body
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            exported = [getattr(e, "value", None) for e in node.value.elts]  # type: ignore[misc]
            continue
        prefix = _PACKAGE + "."
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith(prefix)
            and all(a.asname is None for a in node.names)
        ):
            found.update({a.name: (node.module or "")[len(prefix) :] for a in node.names})
            continue
        return None
    if exported is None or sorted(map(str, exported)) != sorted(found):
        return None
    return found
