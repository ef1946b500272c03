"""``exp target``: a rollout policy learned on one half of the users, valued on the other."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from experiment.cli._app import app, console, user_errors
from experiment.cli._format import Format, FormatOption, emit
from experiment.cli._source import EngineOption, TableOption
from experiment.cli.refine import attribute_names

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.engine.source import DataSource
    from experiment.results.targeting import Targeting
    from segments.definitions import SegmentSet

__all__ = ["target"]

_SUFFIXES = (".yaml", ".yml")


def _paths(out: Path) -> dict[str, Path]:
    """The files one run writes: policy segments, rollout, evidence."""
    return {
        "segments": out,
        "rollout": out.with_name(f"{out.stem}.rollout.yaml"),
        "evidence": out.with_suffix(".json"),
    }


def _check(
    experiment: Path, config: ExperimentConfig, out: Path, report: Path | None, source: DataSource
) -> None:
    from experiment.cli._outputs import experiment_inputs
    from experiment.cli._source import source_inputs
    from experiment.errors import ConfigError
    from experiment.files import HTML_SUFFIXES, check_companions, check_output_file

    if out.suffix.lower() not in _SUFFIXES:
        raise typer.BadParameter(f"{out}: must end in .yaml or .yml", param_hint="--out")
    inputs = [*experiment_inputs(experiment, config), *source_inputs(source)]
    written = _paths(out)
    targets = list(written.values()) + ([report] if report is not None else [])
    for path in targets:
        option, kinds = ("--report", HTML_SUFFIXES) if path == report else ("--out", ())
        check_output_file(path, option=option, inputs=inputs, suffixes=kinds)
    check_companions(out, [written["rollout"], written["evidence"]], option="--out")
    if report is not None and any(report.resolve() == p.resolve() for p in targets[:-1]):
        raise ConfigError(f"--report {report}: is also a file --out writes; give another path")


def _run(
    source: DataSource,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    **options: object,
) -> Targeting:
    """Learn and value the policy with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from experiment.engine.dataset import engine_errors
    from experiment.engine.source import opened
    from reports.format import terminal_text as escape
    from segments.target import target as learn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("learning the policy", total=None)

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=escape(label))

        with engine_errors(), opened(source) as data:
            return learn(data, config, segment_set, progress=progress, **options)  # type: ignore[arg-type]


_Out = Annotated[
    Path,
    typer.Option(
        help="Policy segments file to write (.yaml); the rollout goes to "
        "<stem>.rollout.yaml and the evidence to <stem>.json."
    ),
]
_Metric = Annotated[
    str | None,
    typer.Option(
        help="Metric the policy maximises (default: the first); the others are guardrails."
    ),
]
_Attributes = Annotated[
    str | None,
    typer.Option(
        help="Customer columns a segment may be refined on, comma-separated (default: "
        "every usable column; 'none': no refined segments)."
    ),
]
_Cost = Annotated[
    float,
    typer.Option(
        help="Cost of treating one customer, in the metric's units.",
        min=0,
        max=1e15,  # gains over their standard errors overflow near 1e308
    ),
]
_Budget = Annotated[
    float, typer.Option(help="Largest share of customers treated, in (0, 1] (1: no budget).", min=0)
]
_Seed = Annotated[int, typer.Option(help="Salts the discovery/held-out split.", min=0)]
_MinSize = Annotated[int | None, typer.Option(help="Smallest refined segment, in users.", min=1)]
_Report = Annotated[Path | None, typer.Option(help="Also write an HTML page with the gain curve.")]
_Dataset = Annotated[
    Path | None,
    typer.Argument(help="Dataset folder (customers, events, assignments); omit with --engine."),
]
_Experiment = Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")]


@app.command()
@user_errors
def target(
    dataset: _Dataset = None,
    *,
    experiment: _Experiment,
    engine: EngineOption = None,
    table: TableOption = None,
    out: _Out = Path("policy.yaml"),
    metric: _Metric = None,
    attributes: _Attributes = None,
    cost: _Cost = 0.0,
    budget: _Budget = 1.0,
    seed: _Seed = 0,
    min_size: _MinSize = None,
    report: _Report = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Decide who should get the campaign from now on, and what that is worth.

    Learns a targeting policy on the discovery half of the users (the same random
    halves as `exp refine`): the segments made exclusive (first match wins;
    `everyone_else` holds everyone else), each split on an attribute where discovery shows a
    significant difference in lift, then per segment the arm to give it, net of
    --cost, departing from the overall best arm only on significant evidence, and
    within --budget. Then values it on the held-out half, which the learner never
    saw: per 1,000 customers, against treat-all and treat-none, with confidence
    intervals, for the metric and every other metric of the experiment
    (guardrails), plus a gain curve of segments ranked by discovery lift.

    Writes OUT (the policy as an exclusive segments file), <stem>.rollout.yaml
    (segment -> arm) and <stem>.json (the evidence). Recommends the policy only
    when its held-out value beats treating no one and no guardrail is harmed.
    """
    from experiment.cli._source import data_source
    from experiment.config import load_experiment
    from segments import load_segments

    names = attribute_names(attributes)  # "" or ",,," is an error, as in exp refine
    names = [] if names == ["none"] else names
    config = load_experiment(experiment)
    source = data_source(dataset, engine=engine, table=table, config=config)
    _check(experiment, config, out, report, source)
    segment_set = load_segments(config.segments) if config.segments is not None else None
    started = time.perf_counter()
    found = _run(
        source,
        config,
        segment_set,
        metric=metric,
        attributes=names,
        seed=seed,
        min_size=min_size,
        cost=cost,
        budget=budget,
    )
    paths = _write(found, out, report)
    if fmt is not Format.TABLE:
        document = json.loads(found.to_json())
        emit(fmt, document=document, rows=document["values"])
        return
    _print(found, paths, time.perf_counter() - started)


def _write(found: Targeting, out: Path, report: Path | None) -> dict[str, Path]:
    """Render every file, then replace them together."""
    from experiment.files import text_writer, write_together
    from reports.targeting import policy_yaml, rollout_yaml, targeting_html

    paths = _paths(out)
    texts = [
        (paths["segments"], policy_yaml(found)),
        (paths["rollout"], rollout_yaml(found, paths["segments"].name)),
        (paths["evidence"], found.to_json()),
    ]
    if report is not None:
        texts.append((report, targeting_html(found)))
    write_together([(p, text_writer(t)) for p, t in texts])
    return paths


def _print(found: Targeting, paths: dict[str, Path], elapsed: float) -> None:
    """The values and cells tables, the recommendation and the files written."""
    from rich.table import Table

    from reports.format import fmt_num, fmt_pct, fmt_seconds
    from reports.format import terminal_text as escape
    from reports.targeting import value_views

    out = console()
    values = Table(title=f"{escape(found.experiment)}: policy value per 1,000 customers (held out)")
    for head in ("metric", "policy", "value", f"{1 - found.alpha:.0%} CI", "p", "treated"):
        values.add_column(head)
    for v in value_views(found):
        metric = escape(v.metric) + (" (guardrail)" if v.guardrail else "")
        values.add_row(metric, v.policy, v.value, v.ci, v.p_value, v.share_treated)
    out.print(values)
    cells = Table(title="policy cells (first match wins)")
    for head in ("cell", "share", "arm", "discovery gain", "held-out lift (best arm)"):
        cells.add_column(head)
    for c in found.cells:
        lift = f"{fmt_num(c.lift_abs, 4)} [{fmt_num(c.ci_abs_low, 4)}, {fmt_num(c.ci_abs_high, 4)}]"
        arm = escape(c.arm or found.control)
        cells.add_row(escape(c.name), fmt_pct(c.share, signed=False), arm, fmt_num(c.gain, 4), lift)
    out.print(cells)
    out.print(f"recommendation: [bold]{escape(found.recommendation)}[/] ({escape(found.reason)})")
    out.print(
        f"learned in {fmt_seconds(elapsed)} → {escape(paths['segments'])}, "
        f"{escape(paths['rollout'])} (evidence {escape(paths['evidence'])})"
    )
