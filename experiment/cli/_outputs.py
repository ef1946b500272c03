"""What a command reads, so that none of its outputs can be written over it.

Each command checks its output paths (:mod:`experiment.files`) against the
paths listed here before it loads any data: the experiment file, its segments
file and fitted models, and the dataset's tables (a ``<table>.parquet`` file
or a ``<table>/`` folder of parts).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig

__all__ = ["TABLES", "dataset_inputs", "experiment_inputs"]

TABLES = ("customers", "events", "assignments")


def dataset_inputs(folder: Path | None) -> list[Path]:
    """The dataset's table files and folders that exist (none without a dataset)."""
    if folder is None:
        return []
    found = [Path(folder) / f"{t}.parquet" for t in TABLES] + [Path(folder) / t for t in TABLES]
    return [p for p in found if p.exists()]


def experiment_inputs(experiment: Path, config: ExperimentConfig | None) -> list[Path]:
    """The experiment file, its segments file and the segments' fitted models file."""
    from segments.definitions import models_path

    paths = [Path(experiment)]
    if config is not None and config.segments is not None:
        paths += [config.segments, models_path(config.segments)]
    return paths
