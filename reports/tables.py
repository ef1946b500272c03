"""Terminal views of the planning commands: ``exp power``, ``exp segments``, ``exp assign``.

Each function turns a typed result into rich renderables (markup escaped);
the CLI prints them in order. Every number is formatted here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from reports.format import fmt_count, terminal_text

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from experiment.results.assignment import AssignmentSummary
    from experiment.results.power import PowerPlan
    from experiment.results.validation import ValidationReport

__all__ = [
    "assignment_lines",
    "fmt_cell",
    "model_line",
    "power_lines",
    "profile_lines",
    "validation_lines",
]


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _traffic_line(plan: PowerPlan) -> str:
    """Which traffic model the plan assumes, and whether the window is extrapolated."""
    if plan.traffic == "daily":
        rate = "unknown" if plan.users_per_day is None else f"{plan.users_per_day:,.0f}"
        line = (
            f"traffic: daily arrivals, {rate} users/day (days = users needed / the "
            "segment's share of that rate)"
        )
    else:
        line = (
            "traffic: fixed customer base, everyone eligible at once (MDE at the share "
            "assigned; 'share of base' = users needed / users, above 100% the base is too "
            "small; no days: use --traffic daily for arrivals)"
        )
    if plan.extrapolated and plan.data_days is not None:
        line += (
            f"\n[yellow]extrapolation: the {plan.window_days}-day window is longer than "
            f"the {plan.data_days:g} days of data; the baseline measured on "
            f"{plan.data_days:g} days stands in for {plan.window_days}[/]"
        )
    return line


def power_lines(plan: PowerPlan) -> list[RenderableType]:
    """The planning header (baseline, alpha, power, lift, traffic model) and the per-row table."""
    from rich.table import Table

    head = (
        f"[bold]{terminal_text(plan.experiment)}[/]: baselines from the {plan.baseline} over "
        f"{plan.window_days} days; alpha {plan.alpha:g}, power {plan.power:g}, "
        f"target lift {plan.lift:.1%}"
    )
    daily = plan.traffic == "daily"
    last = "days" if daily else "share of base"
    table = Table()
    for col in ("segment", "metric", "users", "mean", "sd", "MDE", "users needed", last):
        left = col in ("segment", "metric")
        table.add_column(col, justify="left" if left else "right", overflow="fold")
    for r in plan.rows:
        table.add_row(
            terminal_text(r.segment),
            terminal_text(r.metric)
            + (" (cuped)" if r.cuped_variance_reduction is not None else ""),
            f"{r.users:,}",
            _fmt(r.mean, ".4g"),
            _fmt(r.sd, ".4g"),
            _fmt(r.mde_rel, ".1%"),
            _fmt(r.users_needed, ","),
            _fmt(r.days_needed, ".1f") if daily else _pct(r.base_share_needed),
        )
    return [head, _traffic_line(plan), table]


def _pct(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.1%}" if abs(value) < 10 else f"{value:.0%}"


def _overlap_table(report: ValidationReport) -> Table | None:
    from rich.table import Table

    if report.overlap is None or not 1 < len(report.segments) <= 12:
        return None
    names = [s.name for s in report.segments]
    overlap = Table(title="overlap (users in both; hidden under the floor)")
    overlap.add_column("")
    for i in range(len(names)):
        overlap.add_column(str(i + 1), justify="right")
    for i, (n, row) in enumerate(zip(names, report.overlap, strict=True)):
        cells = [f"< {report.min_size}" if v is None else f"{v:,}" for v in row]
        overlap.add_row(f"{i + 1} {terminal_text(n)}", *cells)
    return overlap


def validation_lines(report: ValidationReport) -> list[RenderableType]:
    """The ``exp segments validate`` view: header, per-segment table, overlaps, verdict."""
    from rich.table import Table

    kind = (
        "exclusive (priority order, first match wins, plus rest)"
        if report.exclusive
        else "overlapping (each segment analysed on its own)"
    )
    out: list[RenderableType] = [
        f"[bold yellow]warning: {terminal_text(w)}[/]" for w in report.warnings
    ]
    out += [
        f"[bold]{terminal_text(report.source)}[/]: {len(report.segments)} segments, {kind}",
        f"population {report.population:,}; coverage {_pct(report.coverage)}; "
        f"MDE at alpha {report.alpha:g}, power {report.power:g}, "
        f"{report.users_per_arm_share:.0%} of a segment per arm; "
        f"UNDERPOWERED when the relative MDE > {report.target_lift:.0%}; "
        "NO_MDE (—) where a metric has no spread or a zero baseline in the segment",
    ]
    table = Table(show_lines=False)
    for col in ("segment", "users", "share", *(f"MDE {m}" for m in report.metrics), "check"):
        table.add_column(
            terminal_text(col),
            justify="left" if col in ("segment", "check") else "right",
            overflow="fold",
            no_wrap=col == "check",
            min_width=16 if col == "segment" else None,
        )
    for s in report.segments:
        size = f"< {report.min_size}" if s.suppressed else f"{s.size:,}"
        mdes = [_pct(s.mde_rel.get(m)) for m in report.metrics]
        check = "[green]ok[/]" if s.ok else "[red]" + ", ".join(s.flags) + "[/]"
        table.add_row(terminal_text(s.name), size, _pct(s.share), *mdes, check)
    out.append(table)
    overlap = _overlap_table(report)
    if overlap is not None:
        out.append(overlap)
    failed = sum(not s.ok for s in report.segments)
    out.append("all segments pass" if not failed else f"[red]{failed} segment(s) fail a check[/]")
    return out


def fmt_cell(value: Any) -> str:
    """A profile value: floats to 4 significant digits, ``None`` as empty."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def profile_lines(segments: list[dict[str, Any]], min_size: int) -> list[RenderableType]:
    """The ``exp segments show`` view: per segment its size and anonymised profiles."""
    from rich.table import Table

    out: list[RenderableType] = []
    for seg in segments:
        users = f"< {min_size} (hidden)" if seg["suppressed"] else f"{seg['users']:,}"
        out.append(f"[bold]{terminal_text(seg['segment'])}[/]: {users} customers")
        if seg["profiles"]:  # one column per profile: features read down the rows
            table = Table(show_header=True)
            table.add_column("feature")
            for k in range(len(seg["profiles"])):
                table.add_column(f"#{k + 1}", justify="right", overflow="fold")
            for key in seg["profiles"][0]:
                table.add_row(
                    terminal_text(key), *(terminal_text(fmt_cell(p[key])) for p in seg["profiles"])
                )
            out.append(table)
    return out


def model_line(name: str, model: Any) -> str:
    """One fitted segment model: k-means (k, silhouettes, clusters) or propensity (AUC, bands)."""
    if hasattr(model, "centroids"):  # a ClusterModel; else a PredictModel
        scores = ", ".join(f"k={k}: {v:.3f}" for k, v in model.scores.items())
        return (
            f"{terminal_text(name)}: k-means, k={model.k} "
            f"({model.criterion}; silhouette {scores}); "
            f"clusters: {terminal_text(', '.join(model.labels))}"
        )
    return (
        f"{terminal_text(name)}: logistic propensity, held-out AUC {model.auc:.3f} "
        f"(train {model.n_train:,}, test {model.n_test:,}, base rate "
        f"{model.base_rate:.1%}); bands: "
        f"{terminal_text(', '.join(model.bands))}"
    )


def assignment_lines(summary: AssignmentSummary) -> list[RenderableType]:
    """Users per segment and arm (with held-out and not-entered users), then the total."""
    from rich.table import Table

    table = Table(title=f"{terminal_text(summary.experiment)}: assignments per segment")
    table.add_column("segment")
    for column in summary.columns:
        table.add_column(terminal_text(column), justify="right")
    for segment in summary.segments:
        counts = (fmt_count(summary.counts[segment][c]) for c in summary.columns)
        table.add_row(terminal_text(segment), *counts)
    return [table, f"assigned {summary.entered:,} users → {terminal_text(summary.path)}"]
