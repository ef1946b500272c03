"""The metric entries of an experiment file: what is measured per user, capped, guarded.

Part of the experiment file (:mod:`experiment.config`), which re-exports these
models; every validation problem becomes one ConfigError line there.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from experiment.filemodel import FileModel
from experiment.plan import MetricKind, kind_plan

__all__ = ["Cap", "Guardrail", "Measure", "MetricSpec"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Frozen(FileModel):
    """Frozen, no unknown field, finite numbers (:class:`experiment.filemodel.FileModel`)."""


class Measure(_Frozen):
    """A per-user quantity from the events table.

    ``event`` selects event rows; ``value`` names a numeric column to sum over
    them (e.g. ``revenue``), or is omitted to count the events. ``day`` (retention)
    keeps only events in ``[assigned_at + day·24h, assigned_at + (day+1)·24h)``.
    """

    event: str
    value: str | None = None
    day: int | None = Field(default=None, ge=0, le=3650)


class Cap(_Frozen):
    """Winsorising of a per-user value: at a fixed ``value`` or at a ``quantile``.

    The quantile is taken over all assigned users (every arm), in the engine, with
    linear interpolation (DuckDB's ``quantile_cont``, numpy's default ``linear``).
    """

    value: float | None = Field(default=None, ge=0)
    quantile: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_of(self) -> Cap:
        if (self.value is None) == (self.quantile is None):
            raise ValueError(
                "cap needs exactly one of 'value' (e.g. 500) or 'quantile' (e.g. 0.99)"
            )
        return self


class Guardrail(_Frozen):
    """A metric that must not get worse by more than ``max_drop`` (relative, 0.02 = 2 %).

    A row is breached when the one-sided test of ``lift_rel < -max_drop`` is
    significant at the experiment's ``alpha`` (unadjusted: a safety check errs
    towards flagging), i.e. when the one-sided ``1 - alpha`` upper confidence bound
    of ``lift_rel`` is below ``-max_drop``. Stricter than "the lift is significantly
    negative" by the margin, looser than "the two-sided upper bound is below it".
    For a metric with ``higher_is_better: false`` the check mirrors: breached when
    ``lift_rel > max_drop`` is significant (the one-sided lower bound is above it).
    """

    max_drop: float = Field(ge=0, lt=1)


class MetricSpec(_Frozen):
    """One metric: a proportion, a per-user mean, a ratio of two per-user sums, or retention.

    ``retention`` (with ``day``) is the share of users with at least one ``event``
    on day ``day`` after their assignment (day 0 starts at ``assigned_at``); it is
    analysed as a proportion.

    ``cuped`` names a numeric pre-period column of the customers table used as the
    CUPED covariate (means and proportions; nulls count as 0; on a ratio metric it
    is read as a list of one, below). A list,
    ``cuped: [revenue_90d, orders_90d, channel]``, adjusts by several covariates at
    once (regression adjustment, :func:`experiment.stats.regression_ttest`): numeric
    columns as they are, other columns one-hot encoded by the engine; it is kept
    apart as ``covariates`` so that ``cuped`` stays one column. A ratio metric is
    adjusted on its delta-method linearisation, numerator and denominator
    (:func:`experiment.stats.ratio_regression_ttest`). ``cap`` winsorises
    the per-user value of a mean metric. ``guardrail`` flags rows whose lift drops
    significantly by more than its ``max_drop`` (:class:`Guardrail`).
    ``alternative`` makes the test (p-value and interval) one-sided: ``greater``
    (treatment above control) or ``less``; the confidence sequence stays two-sided.
    ``higher_is_better`` (default true) is the metric's direction: ``false`` for
    metrics such as unsubscribes or refunds, where a decrease is the win. Verdicts,
    decisions, guardrails and chance to win follow it; ``alternative`` does not
    (it always names the side of treatment against control).
    """

    name: str
    kind: MetricKind
    event: str | None = None
    value: str | None = None
    numerator: Measure | None = None
    denominator: Measure | None = None
    cuped: str | None = None
    covariates: tuple[str, ...] | None = None
    cap: Cap | None = None
    guardrail: Guardrail | None = None
    alternative: Literal["two-sided", "greater", "less"] = "two-sided"
    higher_is_better: bool = True
    day: int | None = Field(default=None, ge=0)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"metric name {name!r} must be a letter or _ then letters, digits, _")
        return name

    @model_validator(mode="before")
    @classmethod
    def _cuped_list(cls, data: Any) -> Any:
        """``cuped: [a, b]`` (a list) becomes ``covariates``: the regression adjustment."""
        if isinstance(data, dict) and isinstance(data.get("cuped"), list | tuple):
            data = {k: v for k, v in data.items() if k != "cuped"} | {"covariates": data["cuped"]}
        elif isinstance(data, dict) and data.get("kind") == "ratio" and data.get("cuped"):
            # a ratio is adjusted on its linearisation: one column is a list of one
            data = {k: v for k, v in data.items() if k != "cuped"} | {"covariates": [data["cuped"]]}
        return data

    @field_validator("covariates")
    @classmethod
    def _covariates_listed_once(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if names is not None:
            if not names:
                raise ValueError("'cuped' lists no column; name one or more customers columns")
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"'cuped' lists a column twice: {dupes}")
        return names

    @model_validator(mode="after")
    def _fields_match_kind(self) -> MetricSpec:
        plan = kind_plan(self.kind)
        if plan.ratio:
            if self.numerator is None or self.denominator is None:
                raise ValueError(f"ratio metric {self.name!r} needs 'numerator' and 'denominator'")
        elif self.event is None:
            raise ValueError(f"{self.kind} metric {self.name!r} needs 'event'")
        if plan.needs_day != (self.day is not None):
            raise ValueError(
                f"metric {self.name!r}: 'day' is required by, and only allowed for, kind retention"
            )
        if plan.binary and self.value is not None:
            raise ValueError(f"proportion metric {self.name!r} takes no 'value'")
        if not plan.takes_cuped and (self.cuped is not None or self.covariates is not None):
            raise ValueError(f"{self.kind} metric {self.name!r} takes no 'cuped'")
        if not plan.takes_cap and self.cap is not None:
            raise ValueError(
                f"{self.kind} metric {self.name!r} takes no 'cap'; capping applies to mean metrics"
            )
        return self

    @property
    def measures(self) -> tuple[Measure, ...]:
        """The per-user measures the metric needs: ``(y,)`` or ``(numerator, denominator)``."""
        if kind_plan(self.kind).ratio:
            if self.numerator is None or self.denominator is None:  # pragma: no cover
                raise RuntimeError("Ratio metric without numerator/denominator.")
            return (self.numerator, self.denominator)
        if self.event is None:  # pragma: no cover
            raise RuntimeError("Metric without event.")
        return (Measure(event=self.event, value=self.value, day=self.day),)
