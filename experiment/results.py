"""Typed, frozen analysis results whose field names are the results.json contract.

The names and meanings are fixed by DESIGN.md ("Results contract") because other
tools read them. Extra fields may be added; none may be renamed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiment.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AnalysisResults", "ResultRow", "SegmentInfo", "Srm", "load_results"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ResultRow:
    """One (segment, metric, treatment arm) comparison against control."""

    segment: str
    metric: str
    arm: str
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    lift_abs: float
    lift_rel: float
    ci_low: float
    ci_high: float
    ci_abs_low: float
    ci_abs_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    method: str
    metric_kind: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Srm:
    """Sample-ratio-mismatch check of the arm counts against the design weights."""

    p_value: float
    observed: dict[str, int]
    expected: dict[str, float]
    flag: bool
    threshold: float = 0.001


@dataclass(frozen=True)
class SegmentInfo:
    """A segment's definition and its assigned size."""

    name: str
    where: str
    description: str
    users: int


@dataclass(frozen=True)
class AnalysisResults:
    """Everything ``exp analyze`` concludes; serialises to results.json."""

    experiment: str
    control: str
    srm: Srm
    results: tuple[ResultRow, ...]
    alpha: float = 0.05
    correction: str = "holm"
    arms: tuple[str, ...] = ()
    window_start: str = ""
    window_end: str = ""
    segments: tuple[SegmentInfo, ...] = ()
    schema_version: int = SCHEMA_VERSION
    notes: tuple[str, ...] = field(default=())

    @property
    def confidence_level(self) -> float:
        """The confidence level of every interval, ``1 - alpha``."""
        return 1.0 - self.alpha

    def to_dicts(self) -> list[dict[str, Any]]:
        """The result rows as plain dicts, contract field names as keys."""
        return [asdict(r) for r in self.results]

    def to_json_dict(self) -> dict[str, Any]:
        """The whole document, JSON-ready (``nan``/``inf`` become ``null``)."""
        doc = asdict(self)
        doc["results"] = self.to_dicts()
        doc["confidence_level"] = self.confidence_level
        cleaned: dict[str, Any] = _clean(doc)
        return cleaned

    def to_json(self) -> str:
        """results.json text (strict JSON: no NaN literals)."""
        return json.dumps(self.to_json_dict(), indent=2, allow_nan=False) + "\n"

    def to_pandas(self) -> pd.DataFrame:
        """The result rows as a DataFrame, one row per (segment, metric, arm)."""
        import pandas as pd

        return pd.DataFrame(self.to_dicts(), columns=[f.name for f in fields(ResultRow)])

    def _repr_html_(self) -> str:
        return self.to_pandas().to_html(index=False, float_format=lambda v: f"{v:.4g}")

    @classmethod
    def from_json_dict(cls, doc: dict[str, Any]) -> AnalysisResults:
        """Rebuild results from a parsed results.json (``null`` numbers become ``nan``)."""
        rows = tuple(
            ResultRow(**{f.name: _num(r.get(f.name), f.type) for f in fields(ResultRow)})
            for r in doc["results"]
        )
        srm_doc = doc["srm"]
        srm = Srm(
            p_value=_nan(srm_doc.get("p_value")),
            observed=dict(srm_doc["observed"]),
            expected=dict(srm_doc["expected"]),
            flag=bool(srm_doc["flag"]),
            threshold=float(srm_doc.get("threshold", 0.001)),
        )
        segments = tuple(SegmentInfo(**s) for s in doc.get("segments", ()))
        return cls(
            experiment=doc["experiment"],
            control=doc["control"],
            srm=srm,
            results=rows,
            alpha=float(doc.get("alpha", 0.05)),
            correction=str(doc.get("correction", "holm")),
            arms=tuple(doc.get("arms", ())),
            window_start=str(doc.get("window_start", "")),
            window_end=str(doc.get("window_end", "")),
            segments=segments,
            schema_version=int(doc.get("schema_version", SCHEMA_VERSION)),
            notes=tuple(doc.get("notes", ())),
        )


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _num(value: Any, typ: Any) -> Any:
    if typ in ("float", float):
        return _nan(value)
    if typ in ("int", int):
        return int(value) if value is not None else 0
    if typ in ("bool", bool):
        return bool(value)
    return "" if value is None else value


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def load_results(path: Path) -> AnalysisResults:
    """Read a results.json written by ``exp analyze``.

    Raises:
        DataError: the file is missing or is not a seglift results document.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: results file not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a JSON results file ({exc})") from None
    try:
        return AnalysisResults.from_json_dict(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"{path}: not a seglift results file (missing or invalid field {exc})"
        ) from None
