"""What ran for each metric, read back from the results: the reports' Methods and CUPED notes.

Everything here is derived from what results.json records (each row's ``method``
label, ``metric_kind``, ``chance_to_win``, the CUPED fields and
``cuped_covariates``); nothing is re-run, so ``exp report`` on an old results.json
describes that file's analysis. The row labels are written by
:func:`experiment.analysis.rows.method_label`: the test, its alternative, the
relative interval's construction, the correction, the confidence sequence; each
row's ``family`` and ``family_size`` name its multiple-testing family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from experiment.plan import KINDS, kind_plan
from experiment.results.decision import is_suppressed
from reports.format import fmt_pct

if TYPE_CHECKING:
    from collections.abc import Iterable

    from experiment.results import AnalysisResults, ResultRow

__all__ = [
    "ADJUSTED_LEGEND",
    "MetricMethods",
    "cuped_notes",
    "family_lines",
    "family_text",
    "has_adjusted",
    "is_cuped",
    "metric_methods",
    "shown_interval",
    "shown_means",
]

_WELCH = "Welch's t-test on per-user values, Welch-Satterthwaite degrees of freedom"
_RATIO = (
    "Welch's t-test on the ratio of per-user sums: delta-method variances with the user "
    "as the randomisation unit (Deng, Knoblich & Lu, KDD 2018), Welch-Satterthwaite "
    "degrees of freedom"
)
_CUPED = (
    "Welch's t-test on CUPED-adjusted per-user values y − θ(x − x̄) (Deng et al., WSDM "
    "2013; slope θ pooled over the arms), Welch-Satterthwaite degrees of freedom"
)
_REGRESSION = (
    "Welch's t-test on per-user values adjusted by their regression on several "
    "pre-treatment covariates, y − θ·(x − x̄) (CUPED with k covariates, categorical ones "
    "one-hot; slopes pooled over the arms), Welch-Satterthwaite degrees of freedom"
)
_TESTS = {
    "welch-t": _WELCH,
    "delta-method welch-t": _RATIO,
    # The label older results files gave ratio rows; the same test ran.
    "delta-method z": _RATIO,
}
_CORRECTIONS = {
    "holm": "Holm (family-wise error)",
    "bh": "Benjamini-Hochberg (false discovery rate)",
    "none": "none (p adj. = p)",
    "no correction": "none (p adj. = p)",
}
_ALTERNATIVES = {
    "greater": "one-sided: treatment above control",
    "less": "one-sided: treatment below control",
}
_DELTA_CI = "delta-method relative CI"
# What each relative construction (experiment.stats._relative) does, in words.
_RELATIVE = {
    "log-ratio relative CI": (
        "log-ratio delta method on the {diff} over {base}: log(1 + lift) ± crit·se / (1 + lift), "
        "back-transformed, never below −100%"
    ),
    "fieller relative CI": (
        "Fieller's interval for the ratio of the treatment estimate to {base} (inverts "
        "the test, so it excludes 0 exactly when p < alpha), cut at −100%; none where "
        "the control mean is not significantly above 0"
    ),
}
_ADJUSTED = (
    "; shown widened to the row's adjusted p-value (implied critical value), so it "
    "excludes 0 exactly when p adj. < alpha"
)


@dataclass(frozen=True, kw_only=True)
class MetricMethods:
    """How one metric was analysed, in words, one attribute per Methods column.

    Attributes:
        metric: The metric's name.
        kind: Its kind (``proportion``, ``mean``, ``ratio``, ``retention``).
        test: The test that ran, and its alternative.
        interval_abs: How ``ci_abs_low``/``ci_abs_high`` are built.
        interval_rel: How ``ci_low``/``ci_high`` are built.
        correction: The multiple-testing correction and its family.
        bayes: The model behind ``chance_to_win`` (or that none ran).
        cuped: The covariate and the variance it removed; ``""`` without CUPED.
        horizon: Fixed horizon, or the sequential confidence sequence.
    """

    metric: str
    kind: str
    test: str
    interval_abs: str
    interval_rel: str
    correction: str
    bayes: str
    cuped: str
    horizon: str


def is_cuped(row: ResultRow) -> bool:
    """The row's lift is CUPED-adjusted (its label, adjusted means or variance reduction say so)."""
    return row.method.startswith("cuped(") or any(
        math.isfinite(v)
        for v in (row.mean_control_adj, row.mean_treatment_adj, row.cuped_variance_reduction)
    )


def shown_means(row: ResultRow) -> tuple[float, float, str]:
    """The means to show beside the row's lift, and their mark.

    A CUPED row's lift is the difference of its adjusted means, so those are shown,
    marked ``"adjusted"``; a CUPED row from a results file without them shows its raw
    means marked ``"raw"`` (they do not match the lift); any other row its raw means
    unmarked (``""``).
    """
    if not is_cuped(row):
        return row.mean_control, row.mean_treatment, ""
    if math.isfinite(row.mean_control_adj) and math.isfinite(row.mean_treatment_adj):
        return row.mean_control_adj, row.mean_treatment_adj, "adjusted"
    return row.mean_control, row.mean_treatment, "raw"


ADJUSTED_LEGEND = (
    "CI adj.: relative interval adjusted for the tests in the row's multiple-testing "
    "family (same correction as p adj.): it excludes 0 exactly when p adj. < alpha"
)


def has_adjusted(rows: Iterable[ResultRow]) -> bool:
    """The results carry family-adjusted intervals (files from before them do not).

    Decided over all rows, not per row: an unbounded adjusted interval (adjusted
    p-value 1) is ``null`` in results.json, just like a missing field.
    """
    return any(not (math.isnan(r.ci_abs_adj_low) and math.isnan(r.ci_abs_adj_high)) for r in rows)


def shown_interval(row: ResultRow, *, adjusted: bool) -> tuple[float, float]:
    """The relative interval to show beside the row's verdict.

    With ``adjusted`` (see :func:`has_adjusted`), the interval adjusted for the
    row's family (``ci_adj_low``/``ci_adj_high``), which agrees with ``p_adjusted``
    and so with the verdict; otherwise the raw ``ci_low``/``ci_high``.
    results.json writes an unbounded end as ``null`` (``nan`` once loaded); beside
    a finite end it can only be unbounded, so it is shown as such, as before saving.
    """
    low, high = (row.ci_adj_low, row.ci_adj_high) if adjusted else (row.ci_low, row.ci_high)
    if math.isnan(low) and math.isfinite(high):
        low = -math.inf
    if math.isnan(high) and math.isfinite(low):
        high = math.inf
    return low, high


def _parts(method: str) -> tuple[str, str, str, str, str, bool]:
    """The label split into (covariate, test, alternative, relative CI, correction, sequence)."""
    parts = [p.strip() for p in method.split(",")]
    head = parts[0] if parts else ""
    covariate = ""
    if head.startswith("cuped(") and ")" in head:
        covariate, head = head[len("cuped(") :].split(")", 1)
        head = head.strip()
    alternative = ""
    for alt in _ALTERNATIVES:
        if head.endswith(f" ({alt})"):
            head, alternative = head[: -len(alt) - 3], alt
    rest = parts[1:]
    relative = next((p for p in rest if "relative CI" in p), "")
    correction = next((p for p in rest if p in _CORRECTIONS), "")
    return covariate, head, alternative, relative, correction, "confidence sequence" in rest


def _bayes(kind: str, rows: list[ResultRow], *, cuped: bool) -> str:
    """The chance-to-win model, as ``experiment.analysis.bayes`` picks it."""
    if not any(math.isfinite(r.chance_to_win) for r in rows):
        return "not computed"
    if kind in KINDS and kind_plan(kind).bayes == "beta-binomial" and not cuped:
        return "Beta-Binomial posterior per arm, uniform Beta(1, 1) prior"
    what = "CUPED-adjusted lift" if cuped else "lift"
    return f"normal approximation of the {what}'s sampling distribution, flat prior"


def _cuped(covariate: str, rows: list[ResultRow]) -> str:
    """Covariate, the variance it removed in ``all`` and the range over segments."""
    cuts = {r.segment: r.cuped_variance_reduction for r in rows if not is_suppressed(r)}
    finite = [v for v in cuts.values() if math.isfinite(v)]
    text = f"covariate {covariate or 'not recorded'}"
    if "all" in cuts and math.isfinite(cuts["all"]):
        text += f"; variance of the difference reduced by {fmt_pct(cuts['all'], signed=False)}"
        text += " in all"
    if len(finite) > 1 and min(finite) < max(finite):
        low, high = fmt_pct(min(finite), signed=False), fmt_pct(max(finite), signed=False)
        text += f" ({low} to {high} across segments)"
    return text


def _family(correction: str, rows: list[ResultRow]) -> str:
    """The correction and the families this metric's rows were corrected in, with sizes."""
    name = _CORRECTIONS.get(correction, correction or "not recorded")
    if not any(r.family for r in rows):  # an older file: one family per metric
        return _old_family(name, rows)
    families = dict.fromkeys((r.family, r.family_size) for r in rows if r.family)
    text = f"{name} within " + "; ".join(family_text(f, size) for f, size in families)
    counted = sum(is_suppressed(r) and bool(r.family) for r in rows)
    excluded = sum(is_suppressed(r) and not r.family for r in rows)
    if counted:
        text += f"; {counted} withheld (privacy floor) counted in their family"
    if excluded:
        text += f"; {excluded} withheld (privacy floor) excluded from every family"
    return text


def family_text(family: str, size: int) -> str:
    """A family's name, what it holds and its size, e.g. ``primary (all × … : 4 tests)``."""
    kind = family.split(":", 1)[0]
    what = _FAMILY_KINDS.get(kind, "")
    return f"{family} ({what}{_count(size, 'test')})"


_FAMILY_KINDS = {
    "primary": "all × every metric and treatment arm: ",
    "segments": "this metric's segments in one arm: ",
    "metric": "this metric's segments (all included) × arms: ",
    "experiment": "every test: ",
}


def _old_family(name: str, rows: list[ResultRow]) -> str:
    """A results file without ``family``: its family was this metric's rows, withheld counted."""
    segments = _count(len({r.segment for r in rows}), "segment")
    arms = _count(len({r.arm for r in rows}), "treatment arm")
    hidden = sum(is_suppressed(r) for r in rows)
    text = (
        f"{name} over {_count(len(rows), 'test')}: this metric's {segments} (all included) × {arms}"
    )
    if hidden:
        text += f"; {hidden} withheld (privacy floor) counted"
    return text


def family_lines(results: AnalysisResults) -> list[str]:
    """One plain-text line naming the families of ``p adj.`` and their sizes (none: old file)."""
    families = dict.fromkeys((r.family, r.family_size) for r in results.results if r.family)
    if not families:
        return []
    name = _CORRECTIONS.get(results.correction, results.correction)
    listed = ", ".join(f"{f} ({size})" for f, size in families)
    return [f"p adj.: {name} within families (tests): {listed}"]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _one(name: str, rows: list[ResultRow], results: AnalysisResults) -> MetricMethods:
    kind = rows[0].metric_kind
    covariate, test, alternative, relative, correction, sequence = _parts(rows[0].method)
    cuped = any(is_cuped(r) for r in rows)
    covariate = results.cuped_covariates.get(name, covariate)
    conf = f"{results.confidence_level:.0%}"
    test_text = _CUPED if cuped else _TESTS.get(test, test or "not recorded")
    test_text = _REGRESSION if cuped and " + " in covariate else test_text
    sided = _ALTERNATIVES.get(alternative, "two-sided")
    diff = "adjusted difference of means" if cuped else "difference"
    if relative in ("", _DELTA_CI):
        base = "the raw control mean" if cuped else "the control mean"
        rel = f"{conf}, delta method on the {diff} over {base}, symmetric around the estimate"
    elif relative in _RELATIVE:
        base = "the raw control mean" if cuped else "the control mean"
        rel = f"{conf}, " + _RELATIVE[relative].format(diff=diff, base=base)
    else:
        rel = f"{conf}, {relative}"
    if has_adjusted(results.results):
        rel += _ADJUSTED
    sequential = sequence or any(math.isfinite(r.seq_p_value) for r in rows)
    return MetricMethods(
        metric=name,
        kind=kind,
        test=f"{test_text} ({sided})",
        interval_abs=f"{conf} t interval of the {diff}, same degrees of freedom ({sided})",
        interval_rel=rel,
        correction=_family(correction or results.correction, rows),
        bayes=_bayes(kind, rows, cuped=cuped),
        cuped=_cuped(covariate, rows) if cuped else "",
        horizon=(
            "sequential: two-sided always-valid confidence sequence and p-value "
            "(Waudby-Smith et al. 2023), beside the fixed-horizon test"
            if sequential
            else "fixed horizon: one analysis at the end of the window"
        ),
    )


def metric_methods(results: AnalysisResults) -> list[MetricMethods]:
    """One :class:`MetricMethods` per metric, in the results' order."""
    by_metric: dict[str, list[ResultRow]] = {}
    for row in results.results:
        by_metric.setdefault(row.metric, []).append(row)
    return [_one(name, rows, results) for name, rows in by_metric.items()]


def cuped_notes(results: AnalysisResults) -> list[str]:
    """One plain-text line per CUPED metric: its covariate and the variance it removed."""
    return [f"{m.metric}: CUPED, {m.cuped}" for m in metric_methods(results) if m.cuped]
