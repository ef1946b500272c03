"""Scenario folders: built-in names, loading the three files and checking them together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from experiment.config import (
    ExperimentConfig,
    format_validation_error,
    load_experiment,
    read_yaml,
)
from experiment.errors import ConfigError, RuleError
from segments import SegmentSet, load_segments
from simulators.effects import check_where
from simulators.scenario import ScenarioConfig
from simulators.schema import CUSTOMERS_SCHEMA, EVENTS, VALUE_COLUMNS

__all__ = ["BUILTIN_DIR", "Scenario", "builtin_scenarios", "load_scenario"]

BUILTIN_DIR = Path(__file__).parent / "scenarios"
SCENARIO_FILE = "scenario.yaml"
SEGMENTS_FILE = "segments.yaml"
EXPERIMENT_FILE = "experiment.yaml"


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario folder: its three files, parsed and checked together."""

    name: str
    folder: Path
    config: ScenarioConfig
    experiment: ExperimentConfig
    segment_set: SegmentSet

    @property
    def segments_path(self) -> Path:
        """The scenario's segments file."""
        return self.folder / SEGMENTS_FILE

    @property
    def experiment_path(self) -> Path:
        """The scenario's experiment file."""
        return self.folder / EXPERIMENT_FILE


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with seglift, sorted.

    Examples:
        >>> "ecommerce" in builtin_scenarios()
        True
    """
    return sorted(p.parent.name for p in BUILTIN_DIR.glob(f"*/{SCENARIO_FILE}"))


def _resolve(scenario: str | Path) -> Path:
    builtins = builtin_scenarios()
    if isinstance(scenario, str) and scenario in builtins:
        return BUILTIN_DIR / scenario
    path = Path(scenario)
    if (path / SCENARIO_FILE).is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"{path}: not a scenario folder (no {SCENARIO_FILE})")
    raise ConfigError(
        f"unknown scenario {str(scenario)!r}; built-in scenarios: {', '.join(builtins)}"
    )


def _read_config(path: Path) -> ScenarioConfig:
    try:
        return ScenarioConfig.model_validate(read_yaml(path, what="scenario"))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None


def _check_effects(path: Path, config: ScenarioConfig, scenario: Scenario) -> None:
    segments = scenario.segment_set.names
    treatments = scenario.experiment.treatments
    for i, effect in enumerate(config.effects):
        if effect.segment != "all" and effect.segment not in segments:
            raise ConfigError(
                f"{path}: field 'effects.{i}.segment': {effect.segment!r} is not in "
                f"{SEGMENTS_FILE}; valid: all, {', '.join(segments)}"
            )
        if effect.arm is not None and effect.arm not in treatments:
            raise ConfigError(
                f"{path}: field 'effects.{i}.arm': {effect.arm!r} is not a treatment arm; "
                f"valid: {', '.join(treatments)}"
            )
        try:
            check_where(effect, CUSTOMERS_SCHEMA, scenario.segment_set, as_of=config.start)
        except RuleError as exc:
            raise RuleError(f"{path}: field 'effects.{i}.where': {exc}") from None


def _check_metrics(scenario: Scenario) -> None:
    for metric in scenario.experiment.metrics:
        for measure in metric.measures:
            if measure.event not in EVENTS:
                raise ConfigError(
                    f"{scenario.experiment_path}: metric {metric.name!r}: the simulator does not "
                    f"produce event {measure.event!r}; valid: {', '.join(EVENTS)}"
                )
            if measure.value is not None and measure.value not in VALUE_COLUMNS:
                raise ConfigError(
                    f"{scenario.experiment_path}: metric {metric.name!r}: unknown value column "
                    f"{measure.value!r}; valid: {', '.join(VALUE_COLUMNS)}"
                )


def load_scenario(scenario: str | Path) -> Scenario:
    """Load a built-in scenario by name, or a scenario folder by path.

    Args:
        scenario: A built-in name (see :func:`builtin_scenarios`) or a folder holding
            ``scenario.yaml``, ``segments.yaml`` and ``experiment.yaml``.

    Returns:
        The parsed scenario.

    Raises:
        ConfigError: unknown scenario, a missing or invalid file, or files that do not
            agree (an effect on an unknown segment or arm, a metric on an unknown event).
        RuleError: a segment rule or an effect's ``where:`` rule is not valid.
    """
    folder = _resolve(scenario)
    config_path = folder / SCENARIO_FILE
    config = _read_config(config_path)
    loaded = Scenario(
        name=folder.resolve().name,
        folder=folder,
        config=config,
        experiment=load_experiment(folder / EXPERIMENT_FILE),
        segment_set=load_segments(folder / SEGMENTS_FILE),
    )
    _check_effects(config_path, config, loaded)
    _check_metrics(loaded)
    return loaded
