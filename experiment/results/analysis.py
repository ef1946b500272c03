"""Typed, frozen analysis results whose field names are the results.json contract.

The names and meanings are fixed by DESIGN.md ("Results contract") because other
tools read them. Extra fields may be added; none may be renamed.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiment.errors import DataError
from experiment.results.balance import Balance, balance_from_json
from experiment.results.display import Display
from experiment.results.heterogeneity import HeterogeneityTests, heterogeneity_tests_from_json
from experiment.results.jsonvalue import field_value, json_ready
from experiment.results.lifecycle import Lifecycle, lifecycle_from_json
from experiment.results.quality import DataQuality, DataQualityCheck
from experiment.results.row import ResultRow

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AnalysisResults",
    "DataQuality",
    "DataQualityCheck",
    "Heterogeneity",
    "ResultRow",
    "SegmentInfo",
    "SegmentSrm",
    "Srm",
    "TimelinePoint",
    "load_results",
]

SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class SegmentSrm:
    """The sample-ratio check of one segment (expected shares: its allocation)."""

    segment: str
    p_value: float
    observed: dict[str, int]
    flag: bool


@dataclass(frozen=True, kw_only=True)
class Srm:
    """Sample-ratio-mismatch check of the arm counts against the design weights."""

    p_value: float
    observed: dict[str, int]
    expected: dict[str, float]
    flag: bool
    threshold: float = 0.001
    segments: tuple[SegmentSrm, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Heterogeneity:
    """Cochran's Q test of whether one metric's lift differs between segments."""

    metric: str
    q: float
    p_value: float
    i2: float
    arm: str = ""
    segments: int = 0
    scale: str = "relative"  # always: the other scale is in ``heterogeneity_tests``


@dataclass(frozen=True, kw_only=True)
class TimelinePoint:
    """Cumulative relative lift of one (segment, metric, arm) up to ``date`` (sequential)."""

    date: str
    segment: str
    metric: str
    arm: str
    lift_rel: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, kw_only=True)
class SegmentInfo:
    """A segment's definition and its assigned size.

    ``where`` is the rule of a rule segment ('' for every other kind);
    ``definition`` says in words what every kind is (a crossed segment's values, a
    cluster's centroid, a score band, ``rest``); '' in files written before it.
    """

    name: str
    where: str
    description: str
    users: int
    suppressed: bool = False  # under the privacy floor: ``users`` is withheld
    definition: str = ""


@dataclass(frozen=True, kw_only=True, repr=False)
class AnalysisResults(Display):
    """Everything ``exp analyze`` concludes; serialises to results.json.

    In a notebook: ``to_pandas()`` gives one row per (segment, metric, arm) with
    its verdict and the (segment, arm)'s decision; ``repr`` is a short summary.
    """

    experiment: str
    control: str
    srm: Srm
    results: tuple[ResultRow, ...]
    alpha: float = 0.05
    correction: str = "holm"
    # "" in older files (their families were per_metric, withheld rows counted).
    correction_scope: str = ""
    correction_suppressed: str = ""
    # How ci_low/ci_high were built: "fieller", "log" or "delta" (experiment file).
    relative_interval: str = "fieller"
    arms: tuple[str, ...] = ()
    window_start: str = ""
    window_end: str = ""
    segments: tuple[SegmentInfo, ...] = ()
    schema_version: int = SCHEMA_VERSION
    notes: tuple[str, ...] = field(default=())
    heterogeneity: tuple[Heterogeneity, ...] = ()
    timeline: tuple[TimelinePoint, ...] = ()
    cuped_covariates: dict[str, str] = field(default_factory=dict)
    data_quality: DataQuality = field(default_factory=DataQuality)
    target_lift: float = math.nan  # the experiment's target MDE (older files: unknown)
    # Pre-exposure covariate balance (README "Data quality"); older files: not run.
    balance: Balance = field(default_factory=Balance)
    # Metrics with a ``cuped`` list: their regressors, one-hot levels as "column=level".
    regression_covariates: dict[str, tuple[str, ...]] = field(default_factory=dict)

    # Segment-vs-rest interaction tests and Cochran's Q on both scales (older files: none).
    heterogeneity_tests: tuple[HeterogeneityTests, ...] = ()
    # Treatment-vs-treatment rows (experiment file ``comparisons``; older files: none).
    arm_comparisons: tuple[ResultRow, ...] = ()
    # Migration, survival and projected value (``lifecycle_analysis``; absent: null).
    lifecycle: Lifecycle | None = None

    @property
    def confidence_level(self) -> float:
        """The confidence level of every interval, ``1 - alpha``."""
        return 1.0 - self.alpha

    def to_dicts(self) -> list[dict[str, Any]]:
        """The result rows as plain dicts, contract field names as keys."""
        rows = [asdict(r) for r in self.results]
        for row in rows:
            if row.get("suppressed"):  # privacy floor: no counts either
                row["n_control"] = row["n_treatment"] = None
        return rows

    def to_json_dict(self) -> dict[str, Any]:
        """The whole document, JSON-ready (``nan``/``inf`` become ``null``)."""
        doc = asdict(self)
        doc["results"] = self.to_dicts()
        doc["arm_comparisons"] = [
            {**asdict(r), **({"n_control": None, "n_treatment": None} if r.suppressed else {})}
            for r in self.arm_comparisons
        ]
        doc["confidence_level"] = self.confidence_level
        if self.lifecycle is None:  # files without the block stay as they were
            del doc["lifecycle"]
        for seg in doc.get("segments") or ():
            if seg.get("suppressed"):
                seg["users"] = None
        cleaned: dict[str, Any] = json_ready(doc)
        return cleaned

    def to_json(self) -> str:
        """results.json text (strict JSON: no NaN literals)."""
        return json.dumps(self.to_json_dict(), indent=2, allow_nan=False) + "\n"

    def to_pandas(self) -> pd.DataFrame:
        """The result rows as a DataFrame, one row per (segment, metric, arm).

        The contract's columns come first, then ``verdict`` (the row's win / loss
        / inconclusive) and ``decision`` and ``decision_reason`` (its segment and
        arm's ship / don't ship / keep testing, :data:`experiment.results.decision.RULE`).
        """
        import pandas as pd

        from experiment.results.decision import decisions
        from experiment.results.verdict import verdict

        frame = pd.DataFrame(self.to_dicts(), columns=[f.name for f in fields(ResultRow)])
        made = {(d.segment, d.arm): d for d in decisions(self)} if self.results else {}
        frame["verdict"] = [verdict(r) for r in self.results]
        frame["decision"] = [made[r.segment, r.arm].kind for r in self.results]
        frame["decision_reason"] = [made[r.segment, r.arm].reason for r in self.results]
        return frame

    def _headline(self) -> str:
        from experiment.results.decision import decisions

        srm = "sample ratio MISMATCH" if self.srm.flag else "sample ratio ok"
        # the arms differ before exposure: as untrustworthy as a mismatch
        balance = "; covariate IMBALANCE before exposure" if self.balance.flag else ""
        made = [d.kind for d in decisions(self)] if self.results else []
        counts = ", ".join(f"{made.count(k)} {k}" for k in dict.fromkeys(made))
        return (
            f"control {self.control}; {srm} (p = {self.srm.p_value:.3g}){balance}; "
            f"{len(self.results)} rows, {len(self.segments) or 1} segments; {counts or 'no rows'}"
        )

    @classmethod
    def from_json_dict(cls, doc: dict[str, Any]) -> AnalysisResults:
        """Rebuild results from a parsed results.json (``null`` numbers become ``nan``)."""
        rows = _rows(doc["results"])
        srm_doc = doc["srm"]
        srm = Srm(
            p_value=_nan(srm_doc.get("p_value")),
            observed=dict(srm_doc["observed"]),
            expected=dict(srm_doc["expected"]),
            flag=bool(srm_doc["flag"]),
            threshold=float(srm_doc.get("threshold", 0.001)),
            segments=tuple(
                SegmentSrm(
                    segment=str(s["segment"]),
                    p_value=_nan(s.get("p_value")),
                    observed=dict(s["observed"]),
                    flag=bool(s["flag"]),
                )
                for s in srm_doc.get("segments") or ()
            ),
        )
        segments = tuple(SegmentInfo(**_known(SegmentInfo, s)) for s in doc.get("segments", ()))
        return cls(
            experiment=doc["experiment"],
            control=doc["control"],
            srm=srm,
            results=rows,
            alpha=float(doc.get("alpha", 0.05)),
            correction=str(doc.get("correction", "holm")),
            correction_scope=str(doc.get("correction_scope", "")),
            correction_suppressed=str(doc.get("correction_suppressed", "")),
            # Files written before the option have symmetric delta-method intervals.
            relative_interval=str(doc.get("relative_interval", "delta")),
            arms=tuple(doc.get("arms", ())),
            window_start=str(doc.get("window_start", "")),
            window_end=str(doc.get("window_end", "")),
            segments=segments,
            schema_version=int(doc.get("schema_version", SCHEMA_VERSION)),
            notes=tuple(doc.get("notes", ())),
            heterogeneity=tuple(
                Heterogeneity(**{**_typed(Heterogeneity, h), "scale": h.get("scale") or "relative"})
                for h in doc.get("heterogeneity") or ()
            ),
            timeline=tuple(
                TimelinePoint(**_typed(TimelinePoint, t)) for t in doc.get("timeline") or ()
            ),
            cuped_covariates=dict(doc.get("cuped_covariates") or {}),
            regression_covariates=_lists(doc.get("regression_covariates")),
            target_lift=_nan(doc.get("target_lift")),
            balance=balance_from_json(doc.get("balance")),
            heterogeneity_tests=heterogeneity_tests_from_json(doc.get("heterogeneity_tests")),
            arm_comparisons=_rows(doc.get("arm_comparisons") or ()),
            lifecycle=lifecycle_from_json(doc.get("lifecycle")),
            data_quality=DataQuality(
                checks=tuple(
                    DataQualityCheck(**_typed(DataQualityCheck, c))
                    for c in (doc.get("data_quality") or {}).get("checks") or ()
                )
            ),
        )


def _lists(doc: dict[str, list[str]] | None) -> dict[str, tuple[str, ...]]:
    """A mapping of lists as tuples (older files: absent, empty)."""
    return {k: tuple(v) for k, v in (doc or {}).items()}


def _rows(docs: Any) -> tuple[ResultRow, ...]:
    return tuple(
        ResultRow(
            **{f.name: field_value(r.get(f.name, _default(f)), f.type) for f in fields(ResultRow)}
        )
        for r in docs
    )


def _known(cls: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``doc`` that are fields of ``cls`` (newer files may carry more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in doc.items() if k in names}


def _typed(cls: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return {f.name: field_value(doc.get(f.name), f.type) for f in fields(cls)}


def _default(f: Field[Any]) -> Any:
    """A field's default for a key an older file lacks (``None`` when it has none)."""
    return None if f.default is MISSING else f.default


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def load_results(path: Path) -> AnalysisResults:
    """Read a results.json written by ``exp analyze``, checked against its schema.

    The schema is this module's dataclasses (:mod:`experiment.results.schema`); the
    file is read within :mod:`experiment.textfile`'s limits (size, UTF-8, depth).

    Raises:
        DataError: the file is missing, unreadable or not JSON, or a field is
            missing, unknown (top level) or of the wrong type; one line naming it.
    """
    from experiment.results.schema import schema_problem
    from experiment.results.values import value_problem
    from experiment.textfile import read_json

    doc = read_json(Path(path), what="results", error=DataError)
    problem = schema_problem(AnalysisResults, doc, derived=("confidence_level",))
    problem = problem or value_problem(doc, newest=SCHEMA_VERSION)
    if problem is not None:
        raise DataError(f"{path}: {problem}")
    try:
        return AnalysisResults.from_json_dict(doc)
    except (KeyError, TypeError, ValueError) as exc:  # pragma: no cover - the schema is checked
        raise DataError(f"{path}: not a seglift results file ({exc})") from None
