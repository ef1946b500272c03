"""results.json output."""

from __future__ import annotations

from pathlib import Path

from experiment.files import write_text_atomic
from experiment.results import AnalysisResults

__all__ = ["write_results"]


def write_results(results: AnalysisResults, path: Path) -> Path:
    """Write results.json atomically and return its path."""
    write_text_atomic(path, results.to_json())
    return path
