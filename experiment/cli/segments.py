"""``exp segments``: validate a segments file before rollout, show members, fit models."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from experiment.cli._app import app, console, user_errors

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from segments.definitions import SegmentSet
    from segments.models import EventTables
    from segments.validate import Baseline, ValidationReport

__all__ = ["fit", "segments_app", "show", "validate"]

segments_app = typer.Typer(
    help="Check segment definitions before rollout, see who they match, fit their models.",
    no_args_is_help=True,
)
app.add_typer(segments_app, name="segments")

SegmentsFile = Annotated[Path, typer.Argument(help="Segments YAML file.")]
DataOption = Annotated[
    Path, typer.Option("--data", "-d", help="Dataset folder (customers.parquet at least).")
]
AsOfOption = Annotated[
    dt.datetime | None,
    typer.Option(
        "--as-of",
        help="Analysis start for days_since() and lifecycle (default: the experiment window "
        "start, else the first assignment).",
    ),
]


def _customers(data: Path) -> ir.Table:
    """The customers table of a dataset folder (events and assignments are optional here)."""
    import ibis

    from experiment.errors import DataError

    folder = Path(data)
    single, parts = folder / "customers.parquet", folder / "customers"
    if single.is_file():
        source = str(single)
    elif parts.is_dir() and any(parts.glob("*.parquet")):
        source = str(parts / "*.parquet")
    else:
        raise DataError(f"{folder}: no customers.parquet (or customers/ folder) found")
    con = ibis.duckdb.connect()
    try:
        return con.read_parquet(source, table_name="customers")
    except Exception as exc:  # the engine's own error types vary by backend
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{source}: cannot read as Parquet ({first})") from None


def _event_tables(data: Path, customers: ir.Table) -> EventTables | None:
    """Events (and assignments, if any) beside the customers, for event targets."""
    from experiment.errors import DataError
    from segments.models import EventTables

    con: Any = customers.get_backend()
    found = {}
    for name in ("events", "assignments"):
        single, parts = Path(data) / f"{name}.parquet", Path(data) / name
        source = str(single) if single.is_file() else str(parts / "*.parquet")
        if not (single.is_file() or (parts.is_dir() and any(parts.glob("*.parquet")))):
            continue
        try:
            found[name] = con.read_parquet(source, table_name=name)
        except Exception as exc:  # the engine's own error types vary by backend
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{source}: cannot read as Parquet ({first})") from None
    if "events" not in found:
        return None
    return EventTables(found["events"], found.get("assignments"))


def _as_of(
    as_of: dt.datetime | None, data: Path, config: ExperimentConfig | None
) -> dt.datetime | None:
    import ibis

    if as_of is None and config is not None:
        as_of = config.window.start
    if as_of is None:
        path = Path(data) / "assignments.parquet"
        if path.is_file():
            con = ibis.duckdb.connect()
            first = con.read_parquet(str(path)).assigned_at.min().to_pyarrow().as_py()
            con.disconnect()
            as_of = first
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    return as_of


def _experiment_baselines(
    data: Path, config: ExperimentConfig, segment_set: SegmentSet
) -> dict[str, Baseline]:
    """Each metric's control-arm mean and sd per segment, computed by the engine."""
    from experiment.analysis import arm_baselines
    from experiment.engine import aggregate
    from experiment.engine.dataset import open_dataset
    from experiment.plan import kind_plan
    from segments.validate import Baseline

    cells = aggregate(open_dataset(data), config, segment_set)
    stats = arm_baselines(cells, config.control)
    out = {}
    for metric in config.metrics:
        mean, sd = stats[metric.name]
        formula = kind_plan(metric.kind).power
        if formula == "proportion":
            out[metric.name] = Baseline(kind=formula, mean=mean[1:], sd=sd[1:])  # [0] is `all`
        else:
            out[metric.name] = Baseline(kind="mean", mean=mean[1:], sd=sd[1:])
    return out


def _pct(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.1%}" if abs(value) < 10 else f"{value:.0%}"


def _print_report(report: ValidationReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    kind = (
        "exclusive (priority order, first match wins, plus rest)"
        if report.exclusive
        else "overlapping (each segment analysed on its own)"
    )
    out.print(f"[bold]{escape(report.source)}[/]: {len(report.segments)} segments, {kind}")
    out.print(
        f"population {report.population:,}; coverage {_pct(report.coverage)}; "
        f"MDE at alpha {report.alpha:g}, power {report.power:g}, "
        f"{report.users_per_arm_share:.0%} of a segment per arm; "
        f"UNDERPOWERED when the relative MDE > {report.target_lift:.0%}"
    )
    table = Table(show_lines=False)
    for col in ("segment", "users", "share", *(f"MDE {m}" for m in report.metrics), "check"):
        table.add_column(
            escape(col),
            justify="left" if col in ("segment", "check") else "right",
            overflow="fold",
            no_wrap=col == "check",
            min_width=16 if col == "segment" else None,
        )
    for s in report.segments:
        size = f"< {report.min_size}" if s.suppressed else f"{s.size:,}"
        mdes = [_pct(s.mde_rel.get(m)) for m in report.metrics]
        check = "[green]ok[/]" if s.ok else "[red]" + ", ".join(s.flags) + "[/]"
        table.add_row(escape(s.name), size, _pct(s.share), *mdes, check)
    out.print(table)
    if report.overlap is not None and 1 < len(report.segments) <= 12:
        names = [s.name for s in report.segments]
        overlap = Table(title="overlap (users in both; hidden under the floor)")
        overlap.add_column("")
        for i in range(len(names)):
            overlap.add_column(str(i + 1), justify="right")
        for i, (n, row) in enumerate(zip(names, report.overlap, strict=True)):
            cells = [f"< {report.min_size}" if v is None else f"{v:,}" for v in row]
            overlap.add_row(f"{i + 1} {escape(n)}", *cells)
        out.print(overlap)
    failed = sum(not s.ok for s in report.segments)
    out.print("all segments pass" if not failed else f"[red]{failed} segment(s) fail a check[/]")


def _metrics(values: list[str]) -> dict[str, str]:
    out = {}
    for text in values:
        name, sep, expr = text.partition("=")
        if not sep:
            name, expr = text.strip(), text.strip()
        if not name.strip().isidentifier():
            raise typer.BadParameter(
                f"{text!r}: write NAME=COLUMN or NAME=RULE", param_hint="--metric"
            )
        out[name.strip()] = expr.strip()
    return out


@segments_app.command()
@user_errors
def validate(
    segments_file: SegmentsFile,
    data: DataOption,
    *,
    experiment: Annotated[
        Path | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Experiment file: its alpha, arms, traffic, window and metrics (baselines "
            "from the control arm) set the MDE.",
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help="Pre-period metric NAME=COLUMN (a mean) or NAME=RULE (a proportion), "
            "e.g. buyers='orders_90d >= 1'; repeatable.",
        ),
    ] = None,
    as_of: AsOfOption = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            help="Significance level (default: the experiment's, else 0.05).", min=1e-6, max=0.5
        ),
    ] = None,
    power: Annotated[float, typer.Option(help="Power for the MDE.", min=0.5, max=0.999)] = 0.8,
    target_lift: Annotated[
        float, typer.Option(help="UNDERPOWERED when the relative MDE exceeds this.", min=1e-4)
    ] = 0.10,
    traffic: Annotated[
        float | None,
        typer.Option(
            help="Share of customers expected to enter the experiment during its window "
            "(default: the experiment's traffic × (1 − holdout), else 1).",
            min=1e-6,
            max=1.0,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Check a segments file against a dataset before rollout.

    Parses every rule (errors name the segment and the position), checks columns
    (with close-match suggestions), then reports per segment its size, share,
    overlaps, the population coverage and the minimum detectable effect of each
    metric. Segments under the file's min_size (default 100) are flagged and their
    numbers hidden. Exit code 1 when any segment fails a check, 2 on bad input.
    """
    from experiment.config import load_experiment
    from segments import load_segments
    from segments.validate import validate as run_validate

    segment_set = load_segments(segments_file)
    config = load_experiment(experiment) if experiment is not None else None
    start = _as_of(as_of, data, config)
    customers = _customers(data)
    control = treatment = 0.5
    baselines = None
    share = 1.0 if traffic is None else traffic
    if config is not None:
        total = sum(config.arms.values())
        control = config.arms[config.control] / total
        treatment = min(w for a, w in config.arms.items() if a != config.control) / total
        share = traffic if traffic is not None else config.traffic * (1 - config.holdout)
        with console(stderr=True).status("computing metric baselines in the engine…"):
            baselines = _experiment_baselines(data, config, segment_set)
    with console(stderr=True).status("checking segments…"):
        report = run_validate(
            customers,
            segment_set,
            as_of=start,
            metrics=_metrics(metric or []),
            baselines=baselines,
            alpha=alpha if alpha is not None else (config.alpha if config else 0.05),
            power=power,
            target_lift=target_lift,
            control_share=control,
            treatment_share=treatment,
            traffic=share,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(code=1)


def _profiles(
    table: ir.Table, mask: Any, n: int, as_of: dt.datetime | None
) -> list[dict[str, Any]]:
    """``n`` members in a fixed pseudo-random order, without user_id, dates as days since."""
    from segments.lifecycle import days_since

    cols: dict[str, Any] = {}
    for name in table.columns:
        dtype = table[name].type()
        if name == "user_id":
            continue
        if dtype.is_timestamp() or dtype.is_date():
            if as_of is not None:
                cols[f"days_since_{name}"] = days_since(table[name], as_of)
            continue
        cols[name] = table[name]
    members = table.filter(mask)
    order = members.user_id.cast("string").hexdigest("md5") if "user_id" in table.columns else None
    picked = members.order_by(order) if order is not None else members
    rows: list[dict[str, Any]] = picked.select(**cols).limit(n).to_pyarrow().to_pylist()
    return rows


@segments_app.command()
@user_errors
def show(
    segments_file: SegmentsFile,
    data: DataOption,
    as_of: AsOfOption = None,
    sample: Annotated[
        int, typer.Option(help="Anonymised profiles to show per segment.", min=0, max=50)
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show how many customers match each segment and a few anonymised profiles.

    Profiles drop user_id and turn dates into days since the analysis start.
    Segments under the file's min_size show neither counts nor profiles.
    """
    from rich.markup import escape
    from rich.table import Table

    from segments import compile_segments, load_segments

    segment_set = load_segments(segments_file)
    start = _as_of(as_of, data, None)
    customers = _customers(data)
    masks = compile_segments(segment_set, customers, as_of=start)
    counts = (
        customers.aggregate(**{f"n_{i}": m.sum() for i, m in enumerate(masks.values())})
        .to_pyarrow()
        .to_pylist()[0]
        if masks
        else {}
    )
    result: list[dict[str, Any]] = []
    for i, (name, mask) in enumerate(masks.items()):
        size = int(counts[f"n_{i}"] or 0)
        hidden = size < segment_set.min_size
        result.append(
            {
                "segment": name,
                "users": None if hidden else size,
                "suppressed": hidden,
                "profiles": []
                if hidden or sample == 0
                else _profiles(customers, mask, sample, start),
            }
        )
    if as_json:
        typer.echo(
            json.dumps({"source": str(segments_file), "segments": result}, indent=2, default=str)
        )
        return
    out = console()
    for seg in result:
        users = f"< {segment_set.min_size} (hidden)" if seg["suppressed"] else f"{seg['users']:,}"
        out.print(f"[bold]{escape(seg['segment'])}[/]: {users} customers")
        if seg["profiles"]:  # one column per profile: features read down the rows
            table = Table(show_header=True)
            table.add_column("feature")
            for k in range(len(seg["profiles"])):
                table.add_column(f"#{k + 1}", justify="right", overflow="fold")
            for key in seg["profiles"][0]:
                table.add_row(escape(key), *(escape(_cell(p[key])) for p in seg["profiles"]))
            out.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


@segments_app.command()
@user_errors
def fit(segments_file: SegmentsFile, data: DataOption, as_of: AsOfOption = None) -> None:
    """Fit the cluster and predictive segments and save them beside the segments file.

    Writes SEGMENTS.models.json (atomically): scaling, centroids or coefficients and
    score-band thresholds, so the same segments are reproduced exactly later, on
    any engine. Without it, models are fitted the first time the file is used
    (except event targets such as {event: purchase, days: 14}: those are labelled
    from the dataset's events and control-arm assignments, so fit them here).
    """
    from rich.markup import escape

    from segments import fit_models, load_segments
    from segments.clusters import ClusterModel

    segment_set = load_segments(segments_file)
    start = _as_of(as_of, data, None)
    with console(stderr=True).status("fitting segment models…"):
        customers = _customers(data)
        models = fit_models(
            segment_set, customers, as_of=start, events=_event_tables(data, customers)
        )
    out = console()
    if not models:
        out.print("no cluster or predictive segments to fit")
        return
    for name, model in models.items():
        if isinstance(model, ClusterModel):
            scores = ", ".join(f"k={k}: {v:.3f}" for k, v in model.scores.items())
            out.print(
                f"{escape(name)}: k-means, k={model.k} ({model.criterion}; silhouette {scores}); "
                f"clusters: {escape(', '.join(model.labels))}"
            )
        else:
            out.print(
                f"{escape(name)}: logistic propensity, held-out AUC {model.auc:.3f} "
                f"(train {model.n_train:,}, test {model.n_test:,}, base rate "
                f"{model.base_rate:.1%}); bands: "
                f"{escape(', '.join(model.bands))}"
            )
    out.print(f"saved {escape(str(segment_set.sidecar))}")
