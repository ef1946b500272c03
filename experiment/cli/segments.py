"""``exp segments``: validate a segments file before rollout, show members, fit models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from experiment.arguments import ALPHA, POWER, SAMPLE, TARGET_LIFT, TRAFFIC_SHARE
from experiment.cli._app import app, console, user_errors
from experiment.cli._format import Format, FormatOption, emit, resolve_format
from experiment.cli._source import EngineOption, TableOption
from experiment.errors import ConfigError

__all__ = ["fit", "segments_app", "show", "validate"]

segments_app = typer.Typer(
    help="Check segment definitions before rollout, see who they match, fit their models.",
    no_args_is_help=True,
)
app.add_typer(segments_app, name="segments")

SegmentsFile = Annotated[Path, typer.Argument(help="Segments YAML file.")]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data", "-d", help="Dataset folder (customers.parquet at least); omit with --engine."
    ),
]
_HINT = "--data FOLDER"  # how a missing-data message names the dataset option
AsOfOption = Annotated[
    dt.datetime | None,
    typer.Option(
        "--as-of",
        help="Analysis start for days_since() and lifecycle (default: the experiment window "
        "start, else the first assignment).",
    ),
]


_Experiment = Annotated[
    Path | None,
    typer.Option(
        "--experiment",
        "-e",
        help="Experiment file: its alpha, arms, traffic, window and metrics (baselines "
        "from the control arm) set the MDE; its 'engine:' and 'tables:' too.",
    ),
]
_TargetLift = Annotated[
    float,
    typer.Option(
        help="UNDERPOWERED when the relative MDE exceeds this.",
        min=TARGET_LIFT[0],
        max=TARGET_LIFT[1],
    ),
]
_Traffic = Annotated[
    float | None,
    typer.Option(
        help="Share of customers expected to enter the experiment during its window "
        "(default: the experiment's traffic × (1 − holdout), else 1).",
        min=TRAFFIC_SHARE[0],
        max=TRAFFIC_SHARE[1],
    ),
]


_Metric = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        "-m",
        help="Pre-period metric NAME=COLUMN (a mean) or NAME=RULE (a proportion), "
        "e.g. buyers='orders_90d >= 1'; repeatable.",
    ),
]
_Cuped = Annotated[
    list[str] | None,
    typer.Option(
        "--cuped",
        help="CUPED covariate of a --metric, NAME=COLUMN (a numeric pre-period column): "
        "its MDE shrinks by the measured variance reduction; repeatable.",
    ),
]


def _metric_inputs(
    metric: list[str] | None, cuped: list[str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """``--metric`` and ``--cuped`` as dicts; a covariate must name a metric, not its column.

    A metric's own column as its covariate would "explain" all its variance: an
    MDE of 0% that no experiment reaches.
    """
    metrics, covariates = _metrics(metric or []), _metrics(cuped or [], hint="--cuped")
    unknown = sorted(set(covariates) - set(metrics))
    if unknown:
        known = sorted(metrics)
        raise ConfigError(f"--cuped {unknown[0]!r} is not a --metric; name one of {known}")
    for name, column in covariates.items():
        if column == metrics[name]:
            raise ConfigError(
                f"--cuped {name}={column}: the metric's own column; a covariate is another "
                "numeric pre-period column that predicts it"
            )
    return metrics, covariates


def _metrics(values: list[str], hint: str = "--metric") -> dict[str, str]:
    """``NAME=COLUMN`` / ``NAME=RULE`` values as a dict; anything else is a usage error."""
    what = (
        "NAME=COLUMN" if hint == "--cuped" else "NAME=COLUMN (a mean) or NAME=RULE (a proportion)"
    )
    out = {}
    for text in values:
        name, sep, expr = text.partition("=")
        if not sep or not name.strip().isidentifier() or not expr.strip():
            example = "buyers='orders_90d >= 1'" if hint == "--metric" else "spend=revenue_90d"
            raise typer.BadParameter(
                f"{text[:80]!r}: write {what}, e.g. {example}", param_hint=hint
            )
        if name.strip() in out:
            raise typer.BadParameter(f"{name.strip()!r} is given twice", param_hint=hint)
        out[name.strip()] = expr.strip()
    return out


@segments_app.command()
@user_errors
def validate(
    segments_file: SegmentsFile,
    data: DataOption = None,
    *,
    engine: EngineOption = None,
    table: TableOption = None,
    experiment: _Experiment = None,
    metric: _Metric = None,
    cuped: _Cuped = None,
    as_of: AsOfOption = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            help="Significance level (default: the experiment's, else 0.05).",
            min=ALPHA[0],
            max=ALPHA[1],
        ),
    ] = None,
    power: Annotated[
        float, typer.Option(help="Power for the MDE.", min=POWER[0], max=POWER[1])
    ] = 0.8,
    target_lift: _TargetLift = 0.10,
    traffic: _Traffic = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Check a segments file against a dataset before rollout.

    Parses every rule (errors name the segment and the position), checks columns
    (with close-match suggestions), then reports per segment its size, share,
    overlaps, the population coverage and the minimum detectable effect of each
    metric. Segments under the file's min_size (default 100) are flagged and their
    numbers hidden. Exit code 1 when any segment fails a check, 2 on bad input.
    """
    from experiment.api import validate_segments
    from experiment.cli._source import data_source
    from experiment.config import load_experiment
    from reports.tables import validation_lines

    metrics, covariates = _metric_inputs(metric, cuped)
    config = load_experiment(experiment) if experiment is not None else None
    source = data_source(data, engine=engine, table=table, config=config, hint=_HINT)
    with console(stderr=True).status("checking segments…"):
        report = validate_segments(
            segments_file,
            source,
            experiment=config,
            metrics=metrics,
            cuped=covariates,
            as_of=as_of,
            alpha=alpha,
            power=power,
            target_lift=target_lift,
            traffic=traffic,
        )
    fmt = resolve_format(fmt, as_json=as_json)
    if fmt is not Format.TABLE:
        document = report.to_dict()
        emit(fmt, document=document, rows=document["segments"])
    else:
        out = console()
        for line in validation_lines(report):
            out.print(line)
    if not report.ok:
        raise typer.Exit(code=1)


@segments_app.command()
@user_errors
def show(
    segments_file: SegmentsFile,
    data: DataOption = None,
    *,
    engine: EngineOption = None,
    table: TableOption = None,
    as_of: AsOfOption = None,
    sample: Annotated[
        int,
        typer.Option(help="Anonymised profiles to show per segment.", min=SAMPLE[0], max=SAMPLE[1]),
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Show how many customers match each segment and a few anonymised profiles.

    Profiles drop user_id and turn dates into days since the analysis start.
    Segments under the file's min_size show neither counts nor profiles.
    """
    from experiment.api import show_segments
    from experiment.cli._source import data_source
    from reports.tables import profile_lines
    from segments import load_segments

    segment_set = load_segments(segments_file)
    source = data_source(data, engine=engine, table=table, hint=_HINT)
    result = show_segments(segment_set, source, as_of=as_of, sample=sample)
    fmt = resolve_format(fmt, as_json=as_json)
    if fmt is not Format.TABLE:
        emit(fmt, document={"source": str(segments_file), "segments": result}, rows=result)
        return
    out = console()
    for line in profile_lines(result, segment_set.min_size):
        out.print(line)


@segments_app.command()
@user_errors
def fit(
    segments_file: SegmentsFile,
    data: DataOption = None,
    *,
    engine: EngineOption = None,
    table: TableOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Fit the cluster and predictive segments and save them beside the segments file.

    Writes SEGMENTS.models.json (atomically): scaling, centroids or coefficients and
    score-band thresholds, so the same segments are reproduced exactly later, on
    any engine. Without it, models are fitted the first time the file is used
    (except event targets such as {event: purchase, days: 14}: those are labelled
    from the dataset's events and control-arm assignments, so fit them here).
    """
    from experiment.api import fit_segments
    from experiment.cli._source import data_source, source_inputs
    from experiment.files import check_output_file
    from reports.format import terminal_text as escape
    from reports.tables import model_line
    from segments import load_segments

    segment_set = load_segments(segments_file)
    source = data_source(data, engine=engine, table=table, hint=_HINT)
    inputs = [segments_file, *source_inputs(source)]
    check_output_file(segment_set.sidecar, option="SEGMENTS_FILE", inputs=inputs)
    with console(stderr=True).status("fitting segment models…"):
        models = fit_segments(segment_set, source, as_of=as_of)
    out = console()
    if not models:
        out.print("no cluster or predictive segments to fit")
        return
    for name, model in models.items():
        out.print(model_line(name, model))
    out.print(f"saved {escape(segment_set.sidecar)}")
