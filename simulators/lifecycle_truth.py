"""True migration, survival and value: from every arm's world of every customer, day by day.

The analysis recomputes each customer's lifecycle stage at day ``d`` from the
events (:mod:`experiment.engine.lifecycle`); this module does the same from the
simulator's potential outcomes, in numpy, so the two are independent
implementations of one definition (:mod:`segments.lifecycle`, README "Lifecycle
analysis"):

* the stage as of ``start + d``: recency ``d - 1 - k`` for the last login on day
  ``k < d`` (days from the start, 0-based), or ``days_since_last_login + d`` without
  one; signup age ``+ d``; the value column and the VIP threshold stay as at the
  start (a 90-day pre-period figure the window cannot roll forward);
* lapse time ``T``: the first ``t >= 1`` with recency ``>= at_risk_days`` as of
  ``start + t``, for customers whose recency at the start is below it;
* first purchase: ``k + 1`` for the first day ``k`` with a purchase;
* value: the revenue of days ``< H`` per customer.

Every truth is a population share or mean over a segment's customers, each seen in
the control world and in each treatment world (common random numbers), so it has
no assignment noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segments.lifecycle import STAGES
from simulators.schema import EVENTS

if TYPE_CHECKING:
    import datetime as dt

    import pyarrow as pa

    from experiment.config import ExperimentConfig
    from experiment.lifecyclespec import LifecycleAnalysis
    from segments.lifecycle import LifecycleConfig
    from simulators.catalog import Scenario
    from simulators.outcomes import PotentialOutcomes

__all__ = [
    "LifecycleLog",
    "lifecycle_truth",
    "new_log",
    "stage_codes",
    "start_columns",
    "tracked_events",
    "truth_block",
]

_US_PER_DAY = 86_400_000_000
_NEVER = np.iinfo(np.int32).max


@dataclass(frozen=True)
class LifecycleLog:
    """Per arm, day and customer: logged in, purchased, revenue (filled day by day).

    The arrays are filled in place by :meth:`record`; each day writes its own
    slice, so days simulated on two threads never touch the same elements.
    """

    login: NDArray[np.bool_]
    purchase: NDArray[np.bool_]
    revenue: NDArray[np.float64]

    @classmethod
    def zeros(cls, n_arms: int, days: int, n_users: int) -> LifecycleLog:
        """An empty log for ``days`` days."""
        shape = (n_arms, days, n_users)
        return cls(np.zeros(shape, np.bool_), np.zeros(shape, np.bool_), np.zeros(shape))

    @staticmethod
    def snapshot(outcomes: PotentialOutcomes) -> tuple[NDArray[Any], ...]:
        """The login and purchase counts and revenue before a day (to diff after it)."""
        return (
            outcomes.counts[:, EVENTS.index("login")].copy(),
            outcomes.counts[:, EVENTS.index("purchase")].copy(),
            outcomes.revenue.copy(),
        )

    def record(
        self, day: int, before: tuple[NDArray[Any], ...], outcomes: PotentialOutcomes
    ) -> None:
        """Store what day ``day`` added to ``outcomes`` since ``before``."""
        logins, purchases, revenue = before
        self.login[:, day] = outcomes.counts[:, EVENTS.index("login")] > logins
        self.purchase[:, day] = outcomes.counts[:, EVENTS.index("purchase")] > purchases
        self.revenue[:, day] = outcomes.revenue - revenue


def stage_codes(
    recency: NDArray[np.int64],
    age: NDArray[np.int64],
    vip: NDArray[np.bool_],
    config: LifecycleConfig,
) -> NDArray[np.int8]:
    """Index into :data:`~segments.lifecycle.STAGES`, first match wins."""
    code = np.full(recency.shape, STAGES.index("active"), np.int8)
    code[vip] = STAGES.index("vip")
    code[recency >= config.at_risk_days] = STAGES.index("at_risk")
    code[recency > config.dormant_days] = STAGES.index("dormant")
    code[age <= config.new_days] = STAGES.index("new")
    return code


def start_columns(
    customers: pa.Table, config: LifecycleConfig, start: dt.datetime
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Recency, signup age (whole days) and VIP flag at the start (nulls as the engine reads)."""
    import pyarrow as pa

    recency = customers.column(config.recency_column).to_numpy(zero_copy_only=False)
    recency = np.nan_to_num(np.asarray(recency, np.float64)).astype(np.int64)
    signup = customers.column(config.signup_column).cast(pa.timestamp("us", "UTC")).cast(pa.int64())
    start_us = int(start.timestamp() * 1_000_000)
    age = np.floor((start_us - signup.to_numpy(zero_copy_only=False)) / _US_PER_DAY)
    value = np.asarray(customers.column(config.value_column).to_numpy(zero_copy_only=False), float)
    threshold = np.quantile(value[~np.isnan(value)], 1 - config.vip_share)
    return recency, age.astype(np.int64), np.nan_to_num(value, nan=-np.inf) >= threshold


def _recency(login: NDArray[np.bool_], r0: NDArray[np.int64], d: int) -> NDArray[np.int64]:
    """Recency as of ``start + d`` in one world, from its logins of days ``< d``."""
    if d == 0:
        return r0
    seen = login[:d]
    last = d - 1 - np.argmax(seen[::-1], axis=0)
    return np.where(seen.any(axis=0), d - 1 - last, r0 + d)


def _lapse_times(login: NDArray[np.bool_], r0: NDArray[np.int64], limit: int) -> NDArray[np.int64]:
    """First ``t`` in ``1..days`` with recency ``>= limit``, else ``_NEVER`` (loops over days)."""
    last = -1 - r0
    lapse = np.full(r0.shape, _NEVER, np.int64)
    for t in range(1, login.shape[0] + 1):
        last = np.where(login[t - 1], t - 1, last)
        lapse = np.where((lapse == _NEVER) & (t - 1 - last >= limit), t, lapse)
    return lapse


def _first_day(flags: NDArray[np.bool_]) -> NDArray[np.int64]:
    """``k + 1`` for the first day ``k`` flagged; ``_NEVER`` if none."""
    return np.where(flags.any(axis=0), np.argmax(flags, axis=0) + 1, _NEVER)


def lifecycle_truth(
    log: LifecycleLog,
    customers: pa.Table,
    members: dict[str, NDArray[np.bool_]],
    *,
    config: LifecycleConfig,
    spec: LifecycleAnalysis,
    start: dt.datetime,
    arms: list[str],
    control: str,
) -> dict[str, Any]:
    """The ``lifecycle`` block of ``truth.json`` (README "Simulator").

    Returns:
        ``migration`` rows ``{day, segment, arm, to, share_control, share_treatment,
        effect}`` (``segment`` is the stage at the start), ``survival`` rows ``{curve,
        segment, arm, day, share_control, share_treatment, effect}`` (``curve``:
        ``retained``, not lapsed by ``day``; ``no_purchase``) and ``value`` rows
        ``{segment, arm, horizon, mean_control, mean_treatment, effect}``.
    """
    r0, age0, vip = start_columns(customers, config, start)
    world = _Worlds(arms.index(control), arms)
    return {
        "migration": _migration(log, world, r0=r0, age0=age0, vip=vip, config=config, spec=spec),
        "survival": _survival(log, world, members=members, r0=r0, config=config, spec=spec),
        "value": _value(log, world, members, spec),
    }


@dataclass(frozen=True)
class _Worlds:
    control: int
    arms: list[str]

    @property
    def treatments(self) -> list[tuple[int, str]]:
        return [(i, a) for i, a in enumerate(self.arms) if i != self.control]

    def rows(self, key: dict[str, Any], values: list[float], what: str) -> list[dict[str, Any]]:
        c = values[self.control]
        return [
            {
                **key,
                "arm": a,
                f"{what}_control": c,
                f"{what}_treatment": values[i],
                "effect": values[i] - c,
            }
            for i, a in self.treatments
        ]


def _migration(
    log: LifecycleLog,
    world: _Worlds,
    *,
    r0: NDArray[np.int64],
    age0: NDArray[np.int64],
    vip: NDArray[np.bool_],
    config: LifecycleConfig,
    spec: LifecycleAnalysis,
) -> list[dict[str, Any]]:
    days = log.login.shape[1]
    start_stage = stage_codes(r0, age0, vip, config)
    rows: list[dict[str, Any]] = []
    for d in sorted({*spec.days, days}):
        end = [
            stage_codes(_recency(log.login[i], r0, d), age0 + d, vip, config)
            for i in range(len(world.arms))
        ]
        for s, stage in enumerate(STAGES):
            who = start_stage == s
            if not who.any():
                continue
            for e, dest in enumerate(STAGES):
                share = [float(np.mean(codes[who] == e)) for codes in end]
                rows += world.rows({"day": d, "segment": stage, "to": dest}, share, "share")
    return rows


def _survival(
    log: LifecycleLog,
    world: _Worlds,
    *,
    members: dict[str, NDArray[np.bool_]],
    r0: NDArray[np.int64],
    config: LifecycleConfig,
    spec: LifecycleAnalysis,
) -> list[dict[str, Any]]:
    days = log.login.shape[1]
    n_arms = len(world.arms)
    eligible = r0 < config.at_risk_days
    times = {
        "retained": [_lapse_times(log.login[i], r0, config.at_risk_days) for i in range(n_arms)],
        "no_purchase": [_first_day(log.purchase[i]) for i in range(n_arms)],
    }
    rows: list[dict[str, Any]] = []
    for curve, per_arm in times.items():
        for name, mask in members.items():
            who = mask & eligible if curve == "retained" else mask
            if not who.any():
                continue
            for d in (d for d in spec.retention_days if d <= days):
                share = [float(np.mean(t[who] > d)) for t in per_arm]
                rows += world.rows({"curve": curve, "segment": name, "day": d}, share, "share")
    return rows


def _value(
    log: LifecycleLog,
    world: _Worlds,
    members: dict[str, NDArray[np.bool_]],
    spec: LifecycleAnalysis,
) -> list[dict[str, Any]]:
    days = log.login.shape[1]
    cumulative = np.cumsum(log.revenue, axis=1)
    rows: list[dict[str, Any]] = []
    for name, mask in members.items():
        if not mask.any():
            continue
        for h in sorted({*(h for h in spec.ltv_horizons if h <= days), days}):
            mean = [float(cumulative[i, h - 1][mask].mean()) for i in range(len(world.arms))]
            rows += world.rows({"segment": name, "horizon": h}, mean, "mean")
    return rows


def tracked_events(experiment: ExperimentConfig) -> frozenset[str]:
    """The events the potential outcomes must count: the metrics', plus the lifecycle's."""
    events = {m.event for metric in experiment.metrics for m in metric.measures}
    if experiment.lifecycle_analysis is not None:
        events |= {"login", "purchase"}
    return frozenset(events)


def new_log(experiment: ExperimentConfig, users: int, days: int) -> LifecycleLog | None:
    """An empty log when the experiment asks for a lifecycle analysis, else None."""
    if experiment.lifecycle_analysis is None:
        return None
    return LifecycleLog.zeros(len(experiment.arms), days, users)


def truth_block(
    log: LifecycleLog | None,
    scenario: Scenario,
    customers: pa.Table,
    members: dict[str, NDArray[np.bool_]],
) -> dict[str, Any] | None:
    """The ``lifecycle`` block of ``truth.json``, or None without a log."""
    exp = scenario.experiment
    if log is None or exp.lifecycle_analysis is None:
        return None
    return lifecycle_truth(
        log,
        customers,
        members,
        config=scenario.segment_set.lifecycle,
        spec=exp.lifecycle_analysis,
        start=scenario.config.start,
        arms=list(exp.arms),
        control=exp.control,
    )
