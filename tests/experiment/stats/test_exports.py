"""The package exports its public API, and the stats engine imports nothing it must not."""

from __future__ import annotations

import ast
import importlib
import pathlib

import experiment.stats
from experiment.stats import messages

MODULES = [
    "adjusted", "balance", "bayes", "cuped", "heterogeneity", "interaction", "multiplicity",
    "power", "ratio", "sequential", "srm", "ttest",
]  # fmt: skip
ALLOWED_IMPORTS = {"__future__", "dataclasses", "typing", "numpy", "scipy", "experiment"}


def test_exports_are_sorted_and_complete():
    exported = experiment.stats.__all__
    assert exported == sorted(exported)
    for name in exported:
        assert hasattr(experiment.stats, name), name
    for module in MODULES:
        public = importlib.import_module(f"experiment.stats.{module}").__all__
        assert set(public) <= set(exported), module


def test_exports_stats_imports_only_numpy_scipy_and_sums():
    root = pathlib.Path(experiment.stats.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in ALLOWED_IMPORTS, f"{path.name} imports {name}"
                if name.startswith("experiment."):
                    assert name == "experiment.sums" or name.startswith("experiment.stats"), name


def test_exports_reason_codes_are_unique_strings():
    assert len(set(messages.REASONS)) == len(messages.REASONS)
    assert messages.OK == ""
    assert all(code == code.strip().lower() for code in messages.REASONS)
