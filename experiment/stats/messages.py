"""Reason codes: why a cell's statistics are ``nan``.

Every result array carries a ``reason`` per cell: ``""`` when the cell is fine,
otherwise one of the codes below. The codes are stable strings because reports and
downstream tools match on them; the wording shown to people lives in ``reports/``.
A degenerate cell never raises and never gets invented numbers (no ``p = 1``, no
``ci = (0, 0)``); its inferential fields are ``nan`` and the code says why.

References:
    GrowthBook's single messages module, the habit copied here:
    https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/messages.py
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "NONPOSITIVE_RATIO",
    "OK",
    "REASONS",
    "TOO_FEW_SEGMENTS",
    "TOO_FEW_UNITS",
    "UNBOUNDED_INTERVAL",
    "ZERO_BASELINE",
    "ZERO_DENOMINATOR",
    "ZERO_TREATMENT",
    "ZERO_VARIANCE",
]

OK: Final = ""
"""The cell is fine."""

TOO_FEW_UNITS: Final = "too_few_units"
"""An arm has fewer than 2 units, so its variance is undefined."""

ZERO_VARIANCE: Final = "zero_variance"
"""Both arms have zero variance (up to rounding), so there is no test statistic."""

ZERO_BASELINE: Final = "zero_baseline"
"""The control mean is 0: the relative lift is undefined (the absolute test is fine)."""

ZERO_DENOMINATOR: Final = "zero_denominator"
"""A ratio metric's denominator mean is 0 in an arm, so the ratio is undefined."""

ZERO_TREATMENT: Final = "zero_treatment"
"""The treatment arm's values are all 0: the relative lift is exactly -100% with no
spread, so the delta-method interval is undefined (the absolute test is fine)."""

NONPOSITIVE_RATIO: Final = "nonpositive_ratio"
"""``1 + lift_rel <= 0`` (a covariate adjustment can push it there for a non-negative
metric): the log-scale relative interval is undefined, so the relative interval is
``nan`` (the absolute test is fine)."""

UNBOUNDED_INTERVAL: Final = "unbounded_interval"
"""Fieller's relative interval is unbounded: the control mean is not distinguishable
from 0 at this confidence, so no finite relative interval is honest (the absolute test
is fine)."""

TOO_FEW_SEGMENTS: Final = "too_few_segments"
"""Fewer than 2 segments have a finite estimate and a positive standard error, so there
is no heterogeneity to measure."""

REASONS: Final = (
    OK,
    TOO_FEW_UNITS,
    ZERO_VARIANCE,
    ZERO_BASELINE,
    ZERO_DENOMINATOR,
    ZERO_TREATMENT,
    NONPOSITIVE_RATIO,
    UNBOUNDED_INTERVAL,
    TOO_FEW_SEGMENTS,
)
"""Every code, for validation and documentation."""
