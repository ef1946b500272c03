"""The experiment file: arms, segments file, analysis window, metrics, alpha, correction.

Read once at the edge (the CLI) into frozen pydantic models; core functions take
the unpacked values. Every validation problem becomes one :class:`ConfigError`
line naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from experiment.errors import ConfigError
from experiment.filemodel import FileModel, format_validation_error
from experiment.lifecyclespec import LifecycleAnalysis
from experiment.metricspec import Cap, Guardrail, Measure, MetricSpec
from experiment.plan import MetricKind
from experiment.tablenames import table_names
from experiment.textfile import read_yaml_mapping

__all__ = [
    "Allocation",
    "Cap",
    "Correction",
    "CorrectionScope",
    "ExperimentConfig",
    "Guardrail",
    "Measure",
    "MetricKind",
    "MetricSpec",
    "RelativeIntervalName",
    "SuppressedTests",
    "Window",
    "check_allocation",
    "format_validation_error",
    "load_experiment",
    "read_yaml",
]

Correction = Literal["holm", "bh", "none"]
# Which tests ``correction`` adjusts together (:mod:`experiment.analysis.families`).
CorrectionScope = Literal["primary_and_segments", "per_metric", "experiment"]
# The privacy floor's withheld tests: left out of their family, or counted in it.
SuppressedTests = Literal["excluded", "counted"]
# How ci_low/ci_high bound the relative lift (experiment.stats._relative); the same
# names as experiment.stats.RelativeInterval, which sits above this module.
RelativeIntervalName = Literal["fieller", "log", "delta"]

# The engine URL forms experiment.engine.connection accepts (checked in full when it connects).
_ENGINE = re.compile(r"(duckdb|postgres|postgresql|sc)://\S+|pyspark", re.IGNORECASE)


class _Frozen(FileModel):
    """Frozen, no unknown field, finite numbers (:class:`experiment.filemodel.FileModel`)."""


class Window(_Frozen):
    """The analysis window: events with ``start <= ts < start + days`` count.

    Without ``start``, the window starts at the first assignment.
    """

    start: dt.datetime | None = None
    days: int = Field(default=14, gt=0, le=3650)

    @field_validator("start")
    @classmethod
    def _in_utc(cls, start: dt.datetime | None) -> dt.datetime | None:
        # the engines know zone names, not bare offsets such as +02:00 (DuckDB refuses them)
        if start is None or start.tzinfo is None or start.utcoffset() == dt.timedelta(0):
            return start
        try:
            return start.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError(f"{start} is not a time in UTC years 1 to 9999") from None

    @model_validator(mode="after")
    def _end_is_a_date(self) -> Window:
        if self.start is not None and self.start.replace(tzinfo=None) > dt.datetime.max - (
            dt.timedelta(days=self.days)
        ):
            raise ValueError(
                f"start {self.start:%Y-%m-%d} plus {self.days} days ends after the year 9999"
            )
        return self


class Allocation(_Frozen):
    """A segment's own split: arm weights and/or traffic share overriding the experiment's."""

    arms: dict[str, float] | None = None
    traffic: float | None = Field(default=None, gt=0, le=1)

    @field_validator("arms")
    @classmethod
    def _weights(cls, arms: dict[str, float] | None) -> dict[str, float] | None:
        if arms is not None and (any(w < 0 for w in arms.values()) or sum(arms.values()) <= 0):
            raise ValueError("arm weights must be >= 0 and not all 0")
        if arms is not None and not math.isfinite(sum(arms.values())):
            raise ValueError("arm weights are too large; use shares such as 0.5")
        return arms


class ExperimentConfig(_Frozen):
    """A parsed experiment file. ``segments`` is resolved relative to the file.

    Assignment fields (see :mod:`experiment.assignment` for the bucket layout):
    ``holdout`` is the share of all users kept out of every arm (hashed with
    ``holdout_salt``, so experiments sharing that salt share the holdout);
    ``traffic`` the share of users that enter the experiment; ``allocation``
    per-segment arm weights and traffic, the segment priority deciding for users
    in several segments.

    ``engine`` is where the data lives when no dataset folder is given: an engine
    URL (``duckdb:///path.db``, ``pyspark``, ``sc://host:15002``,
    ``postgres://user@host:port/db``; ``--engine`` overrides it). ``tables`` names
    the contract tables there (``{customers: crm.customers, ...}``; default: their
    own names), as dotted identifiers (:mod:`experiment.tablenames`).

    ``correction_scope`` names the multiple-testing families ``correction`` runs in:
    ``primary_and_segments`` (``all`` over metrics × arms; each metric and arm's
    segments apart), ``per_metric`` (``all`` and every segment and arm of one metric)
    or ``experiment`` (every test). ``correction_suppressed`` leaves the tests of
    segments under the privacy floor out of their family (``excluded``) or keeps them
    in (``counted``).
    """

    name: str = Field(min_length=1, max_length=200)
    salt: str | None = Field(default=None, max_length=1000)
    control: str = "control"
    arms: dict[str, float] = Field(default_factory=lambda: {"control": 0.5, "treatment": 0.5})
    segments: Path | None = None
    window: Window = Field(default_factory=Window)
    # 200 at most: 1,000 metrics took exp power 90 s, 5,000 past two minutes (a hostile file)
    metrics: list[MetricSpec] = Field(min_length=1, max_length=200)
    # as the CLI's --alpha and --power: with power below alpha no sample size reaches it
    alpha: float = Field(default=0.05, gt=0, le=0.5)
    correction: Correction = "holm"
    correction_scope: CorrectionScope = "primary_and_segments"
    correction_suppressed: SuppressedTests = "excluded"
    relative_interval: RelativeIntervalName = "fieller"
    srm_threshold: float = Field(default=0.001, gt=0, lt=1)
    holdout: float = Field(default=0.0, ge=0, lt=1)
    holdout_salt: str = "holdout"
    traffic: float = Field(default=1.0, gt=0, le=1)
    allocation: dict[str, Allocation] = Field(default_factory=dict)
    invalid_revenue_threshold: float = Field(default=0.01, ge=0, le=1)
    sequential: bool = False
    target_lift: float = Field(default=0.10, ge=1e-4, le=100)  # as validate's --target-lift
    power: float = Field(default=0.8, ge=0.5, lt=1)
    sequential_tuning: float = Field(default=5000.0, gt=0, le=1e12)
    engine: str | None = Field(default=None, max_length=2000)
    tables: dict[str, str] | None = None
    # Treatment against treatment (issue 17): "all_pairs" or [[baseline, arm], ...].
    comparisons: Literal["all_pairs"] | list[tuple[str, str]] | None = None
    # Segment migration, survival and lifetime value (issue 19), opt-in.
    lifecycle_analysis: LifecycleAnalysis | None = None

    @model_validator(mode="after")
    def _comparison_arms(self) -> ExperimentConfig:
        if isinstance(self.comparisons, list):
            treatments = sorted(a for a in self.arms if a != self.control)
            for pair in self.comparisons:
                if pair[0] == pair[1] or not set(pair) <= set(treatments):
                    raise ValueError(
                        f"comparisons: pair {list(pair)} must name two different treatment arms of "
                        f"{treatments} (control is compared with every arm already)"
                    )
        days = self.lifecycle_analysis.days if self.lifecycle_analysis else []
        if any(d > self.window.days for d in days):
            raise ValueError(
                f"lifecycle_analysis.days: {max(days)} is past the window ({self.window.days} days)"
            )
        return self

    def arm_pairs(self) -> list[tuple[str, str]]:
        """The ``(baseline, arm)`` treatment pairs of ``comparisons``, in file order."""
        if self.comparisons == "all_pairs":
            treatments = [a for a in self.arms if a != self.control]
            return [(a, b) for i, a in enumerate(treatments) for b in treatments[i + 1 :]]
        return list(dict.fromkeys(self.comparisons or []))

    @field_validator("segments", mode="before")
    @classmethod
    def _segments_path(cls, value: object) -> object:
        # '' is the experiment file's own folder once resolved: name the field instead
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "empty; give the segments file's path (relative to this file), or leave the "
                "field out to analyse 'all' only"
            )
        return value

    @field_validator("engine")
    @classmethod
    def _engine_url(cls, engine: str | None) -> str | None:
        # the value is not echoed: a URL may hold a password
        if engine is not None and not _ENGINE.fullmatch(engine.strip()):
            raise ValueError(
                "expected an engine URL: duckdb:///path.db, pyspark, sc://host:15002 or "
                "postgres://user@host:port/db"
            )
        return None if engine is None else engine.strip()

    @field_validator("tables")
    @classmethod
    def _table_names(cls, tables: dict[str, str] | None) -> dict[str, str] | None:
        table_names(tables)  # ValueError names the bad role or table name
        return tables

    @field_validator("arms")
    @classmethod
    def _arms_are_weights(cls, arms: dict[str, float]) -> dict[str, float]:
        if len(arms) < 2:
            raise ValueError("needs at least two arms, e.g. {control: 0.5, treatment: 0.5}")
        if any(w <= 0 for w in arms.values()):
            raise ValueError("arm weights must be > 0")
        if not math.isfinite(sum(arms.values())):
            raise ValueError("arm weights are too large; use shares such as 0.5")
        return arms

    @model_validator(mode="after")
    def _control_and_unique_metrics(self) -> ExperimentConfig:
        if self.control not in self.arms:
            raise ValueError(f"control arm {self.control!r} is not one of arms {sorted(self.arms)}")
        if "holdout" in self.arms:
            raise ValueError("'holdout' is reserved for held-out users; rename that arm")
        for segment, alloc in self.allocation.items():
            if alloc.arms is not None and set(alloc.arms) != set(self.arms):
                raise ValueError(
                    f"allocation for segment {segment!r} must weight exactly the arms "
                    f"{sorted(self.arms)}; got {sorted(alloc.arms)}"
                )
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique; repeated: {dupes}")
        for m in self.metrics:  # the retention day must fit in the analysis window
            if m.day is not None and m.day >= self.window.days:
                raise ValueError(
                    f"metric {m.name!r}: retention day {m.day} is past the window "
                    f"(window.days = {self.window.days}); use a day below {self.window.days}"
                )
        return self

    @property
    def assignment_salt(self) -> str:
        """The hashing salt: ``salt`` if given, else the experiment name."""
        return self.salt if self.salt is not None else self.name

    @property
    def treatments(self) -> list[str]:
        """Arms other than control, in file order."""
        return [a for a in self.arms if a != self.control]


def check_allocation(config: ExperimentConfig, segment_names: list[str]) -> None:
    """Check that every ``allocation`` entry names a segment of the segments file.

    Raises:
        ConfigError: an allocation without a segments file, or naming an unknown segment.
    """
    unknown = [s for s in config.allocation if s not in segment_names]
    if not unknown:
        return
    if config.segments is None:
        raise ConfigError(
            f"experiment {config.name!r}: field 'allocation' needs a 'segments' file "
            "to define its segments"
        )
    raise ConfigError(  # the field is the experiment file's; the names, the segments file's
        f"experiment {config.name!r}: field 'allocation' names unknown segment {unknown[0]!r}; "
        f"segments are: {', '.join(segment_names) or 'none'} (in {config.segments})"
    )


def read_yaml(path: Path, *, what: str) -> dict[str, Any]:
    """Read a YAML mapping within :mod:`experiment.textfile`'s limits, or a one-line error.

    Raises:
        ConfigError: missing, unreadable, not UTF-8, too large or deep, an alias
            bomb, a repeated key, a non-finite number, or not a mapping.
    """
    return read_yaml_mapping(Path(path), what=what)


def load_experiment(path: Path) -> ExperimentConfig:
    """Load and validate an experiment file.

    Raises:
        ConfigError: the file is missing, not YAML, or a field is invalid.
    """
    data = read_yaml(path, what="experiment")
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
    if config.segments is not None and not config.segments.is_absolute():
        config = config.model_copy(update={"segments": path.parent / config.segments})
    if config.segments is not None and _same_file(config.segments, path):
        raise ConfigError(
            f"{path}: field 'segments': {config.segments} is this experiment file; give the "
            "segments file (segments: [...] of rules), or leave the field out"
        )
    return config


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # missing, a link loop...: reported when the segments file is read
        return False
