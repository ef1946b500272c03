"""Whether an experiment file can be analysed from kept sums (``exp analyze --from-sums``).

The metrics, arms and segments must be those the sums were computed for; settings
that only the statistics read (alpha, correction, decision rules) may differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.errors import ConfigError
from experiment.sums import CellSums, JointSums

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig, MetricSpec

__all__ = ["check_fit"]


def check_fit(
    cells: CellSums,
    config: ExperimentConfig,
    segment_names: Sequence[str] | None,
    *,
    source: Path | str,
) -> None:
    """Check that an experiment file can be analysed from these sums.

    The metrics (names, kinds' sums, CUPED), the arms and the segments must be
    those the sums were computed for, and a sequential experiment needs the
    timeline. Settings that only the statistics read (alpha, correction,
    decision rules, guardrails) may differ: that is what re-running is for.

    Raises:
        ConfigError: one line naming what differs.
    """
    from experiment.plan import kind_plan

    have = {spec_name: spec for spec_name, spec in _metric_specs(cells).items()}
    want = [m.name for m in config.metrics]
    if want != list(have):
        raise ConfigError(
            f"{source}: sums hold metrics {', '.join(have) or 'none'}, "
            f"the experiment file has {', '.join(want)}"
        )
    for metric in config.metrics:
        joint, cuped = have[metric.name]
        _check_covariates(cells, metric, source)
        if kind_plan(metric.kind).ratio != joint:
            raise ConfigError(f"{source}: metric {metric.name!r} is of another kind in the sums")
        if (metric.cuped is not None) != cuped:
            raise ConfigError(
                f"{source}: metric {metric.name!r}: CUPED covariate differs from the sums'"
            )
    if tuple(config.arms) != cells.arms:
        raise ConfigError(
            f"{source}: sums hold arms {', '.join(cells.arms)}, "
            f"the experiment file has {', '.join(config.arms)}"
        )
    wanted = ("all", *(segment_names or ()))
    if wanted != cells.segments:
        raise ConfigError(
            f"{source}: sums hold segments {', '.join(cells.segments[1:]) or 'none'}, "
            f"the segments file has {', '.join(wanted[1:]) or 'none'}"
        )
    if config.sequential and not cells.timeline:
        raise ConfigError(
            f"{source}: the experiment is sequential but the sums hold no timeline; "
            "save them from a sequential analysis"
        )


def _metric_specs(cells: CellSums) -> dict[str, tuple[bool, bool]]:
    """Per metric: whether its sums are joint (ratio) and whether it has CUPED moments."""
    return {
        name: (isinstance(sums, JointSums), name in cells.cuped)
        for name, sums in cells.metrics.items()
    }


def _check_covariates(cells: CellSums, metric: MetricSpec, source: Path | str) -> None:
    """The metric's ``cuped`` list must be the one the regression sums were computed with.

    The sums name the regressors after one-hot encoding (``channel=Web``); the
    columns they come from, in order, must be the list's.
    """
    names = cells.regression_names.get(metric.name)
    if metric.covariates is None and metric.name not in cells.regression:
        return
    if metric.covariates is not None and metric.name not in cells.regression:
        raise ConfigError(
            f"{source}: metric {metric.name!r}: the sums hold no regression sums for its "
            "'cuped' list (saved without it, or by an older version); run exp analyze on the data"
        )
    if metric.covariates is None or not _encodes(metric.covariates, names or ()):
        raise ConfigError(
            f"{source}: metric {metric.name!r}: 'cuped' list differs from the sums' "
            f"covariates ({', '.join(names or ()) or 'none'})"
        )


def _encodes(columns: Sequence[str], names: Sequence[str]) -> bool:
    """Whether ``names`` are ``columns`` in order, each itself or its ``col=level`` indicators."""
    rest = list(names)
    for col in columns:
        taken = 0
        while taken < len(rest) and (rest[taken] == col or rest[taken].startswith(f"{col}=")):
            taken += 1
            if rest[taken - 1] == col:
                break
        if taken == 0:
            return False
        rest = rest[taken:]
    return not rest
