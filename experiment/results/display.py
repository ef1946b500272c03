"""One display mixin for every results object: a DataFrame, a notebook table, a short repr.

A results object says what it is in a title and a few summary lines; its rows
come from ``to_pandas()``. The notebook view escapes every string (segment
names and rules are user text).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Display"]


class Display:
    """Mixin: ``to_pandas()``, ``_repr_html_()`` and a compact ``__repr__``.

    A subclass implements ``to_pandas`` and ``_headline`` (a one-line summary:
    sizes and the headline finding), and may override ``_title``. Dataclasses
    using it pass ``repr=False`` so this ``__repr__`` is kept.
    """

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a DataFrame (pandas is imported on first use)."""
        raise NotImplementedError

    def _title(self) -> str:
        name = getattr(self, "experiment", None) or getattr(self, "source", None)
        return type(self).__name__ + (f" {name!r}" if name else "")

    def _headline(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self._title()}: {self._headline()}>"

    def _repr_html_(self) -> str:
        """Notebook view: the title and headline over the escaped rows."""
        head = f"<p><b>{html.escape(self._title())}</b> · {html.escape(self._headline())}</p>"
        table = self.to_pandas().to_html(
            index=False, escape=True, na_rep="–", float_format=lambda v: f"{v:.4g}"
        )
        return head + table
