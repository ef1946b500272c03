"""The lifecycle section of the terminal output: migration, retention and projected value.

Reads ``results.lifecycle`` only (README "Lifecycle analysis"); names from the data
go through :func:`reports.format.terminal_text`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol, TypeVar

from reports.format import DASH, fmt_num, fmt_p, fmt_pct, terminal_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from experiment.results import AnalysisResults
    from experiment.results.lifecycle import Lifecycle

__all__ = ["lifecycle_lines"]


class _Moved(Protocol):
    """A migration row (a stage's or a rule segment's): its day, significance and adjusted p."""

    @property
    def day(self) -> int: ...
    @property
    def significant(self) -> bool: ...
    @property
    def p_adjusted(self) -> float: ...


_Row = TypeVar("_Row", bound=_Moved)


def _pp(value: float) -> str:
    """A difference of shares in percentage points."""
    return f"{value * 100:+.1f} pp" if math.isfinite(value) else DASH


def _at_end(block: Lifecycle, rows: Sequence[_Row]) -> tuple[int, list[_Row], list[_Row]]:
    """The last day shown, its rows, and the significant ones, most significant first."""
    end = block.days[-1] if block.days else block.window_days
    at_end = [r for r in rows if r.day == end]
    return end, at_end, sorted((r for r in at_end if r.significant), key=lambda r: r.p_adjusted)


def _migration_lines(block: Lifecycle, limit: int) -> list[str]:
    end, rows, moved = _at_end(block, block.migration)
    head = (
        f"[bold]migration by day {end}[/] (stage at the start → stage at day {end}, treatment − "
        f"control; {terminal_text(block.correction)} {block.migration_family})"
    )
    if not moved:
        return [f"{head}: [green]no share moved significantly[/] ({len(rows)} tests)"]
    lines = [
        f"  {terminal_text(r.segment)} → {terminal_text(r.to)} ({terminal_text(r.arm)}): "
        f"{fmt_pct(r.share_control, signed=False)} → {fmt_pct(r.share_treatment, signed=False)}, "
        f"{_pp(r.effect)} [{_pp(r.ci_low)}, {_pp(r.ci_high)}], p adj. = {fmt_p(r.p_adjusted)}"
        for r in moved[:limit]
    ]
    return [head, *lines]


def _segment_lines(block: Lifecycle, limit: int) -> list[str]:
    if not block.segment_migration:
        return []
    end, rows, moved = _at_end(block, block.segment_migration)
    head = (
        f"[bold]segment migration by day {end}[/] (rule re-evaluated on the behaviour up to day "
        f"{end}; {terminal_text(block.correction)} {block.segment_migration_family})"
    )
    if not moved:
        return [f"{head}: [green]no share moved significantly[/] ({len(rows)} tests)"]
    lines = [
        f"  {terminal_text(r.segment)}: {terminal_text(r.start)} → {terminal_text(r.to)} "
        f"({terminal_text(r.arm)}): {fmt_pct(r.share_control, signed=False)} → "
        f"{fmt_pct(r.share_treatment, signed=False)}, {_pp(r.effect)} "
        f"[{_pp(r.ci_low)}, {_pp(r.ci_high)}], p adj. = {fmt_p(r.p_adjusted)}"
        for r in moved[:limit]
    ]
    return [head, *lines]


def _survival_lines(block: Lifecycle, limit: int) -> list[str]:
    moved = sorted((r for r in block.survival if r.significant), key=lambda r: r.p_adjusted)
    what = {"retained": "still active (not lapsed)", "no_purchase": "not yet purchased"}
    how = f"{terminal_text(block.correction)} {block.survival_family}"
    head = f"[bold]retention (Kaplan–Meier)[/] ({how})"
    if not moved:
        return [f"{head}: [green]no curve differs significantly[/] ({len(block.survival)} tests)"]
    lines = [
        f"  {terminal_text(r.segment)}, {what.get(r.curve, terminal_text(r.curve))} at day {r.day} "
        f"({terminal_text(r.arm)}): {fmt_pct(r.survival_control, signed=False)} → "
        f"{fmt_pct(r.survival_treatment, signed=False)}, {_pp(r.effect)}, "
        f"p adj. = {fmt_p(r.p_adjusted)}"
        for r in moved[:limit]
    ]
    return [head, *lines]


def _value_lines(block: Lifecycle) -> list[str]:
    rows = [r for r in block.value if r.segment == "all" or r.p_value < 0.05]
    if not rows:
        return []
    lines = [
        f"  {terminal_text(r.segment)}, {r.horizon} days ({terminal_text(r.arm)}): "
        f"{fmt_num(r.value_control)} → {fmt_num(r.value_treatment)}, effect {fmt_num(r.effect)} "
        f"[{fmt_num(r.ci_low)}, {fmt_num(r.ci_high)}]"
        for r in rows
        if r.horizon > block.window_days
    ]
    head = (
        "[bold]projected value per customer[/] (a projection: spend level and decay of the "
        f"{block.window_days}-day window continued; model in results.json lifecycle.value_model)"
    )
    return [head, *lines] if lines else []


def lifecycle_lines(results: AnalysisResults, *, limit: int = 8) -> list[str]:
    """The lifecycle section with rich markup; empty without a ``lifecycle`` block."""
    block = results.lifecycle
    if block is None:
        return []
    return [
        *_migration_lines(block, limit),
        *_segment_lines(block, limit),
        *_survival_lines(block, limit),
        *_value_lines(block),
    ]
