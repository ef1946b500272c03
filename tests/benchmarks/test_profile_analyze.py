"""benchmarks/profile_analyze.py: a main-thread stack counts for the part a reader would name."""

from __future__ import annotations

from tests.fixtures.benchmarks import load_benchmark

SITE = "/venv/lib/python3.11/site-packages"
ROOT = "/work/seglift"


def _frame(name: str, path: str, line: int = 1) -> str:
    return f"{name} ({path}:{line})"


def test_a_query_counts_for_the_caller_of_the_fetch_helper() -> None:
    profile = load_benchmark("profile_analyze")
    stack = [
        _frame("<module>", "<string>"),
        _frame("user_table", f"{ROOT}/experiment/engine/users.py"),
        _frame("analysis_window", f"{ROOT}/experiment/engine/window.py"),
        _frame("_complete", f"{ROOT}/experiment/engine/window.py"),
        _frame("scalar", f"{ROOT}/experiment/engine/fetch.py"),
        _frame("arrow", f"{ROOT}/experiment/engine/fetch.py"),
        _frame("to_arrow_table", f"{SITE}/duckdb/_relation.py"),
    ]
    assert profile.part(stack) == "engine: _complete"


def test_an_import_counts_for_its_package() -> None:
    profile = load_benchmark("profile_analyze")
    stack = [
        _frame("<module>", "<string>"),
        _frame("open_dataset", f"{ROOT}/experiment/engine/dataset.py"),
        _frame("<module>", f"{SITE}/ibis/__init__.py"),
        _frame("<module>", f"{SITE}/sqlglot/__init__.py"),
    ]
    assert profile.part(stack) == "import ibis"


def test_a_query_counts_for_the_innermost_seglift_caller_but_the_fetch_helper() -> None:
    profile = load_benchmark("profile_analyze")
    frames = [
        ("<module>", "<string>"),
        ("aggregate", f"{ROOT}/experiment/engine/cells.py"),
        ("table_checks", f"{ROOT}/experiment/engine/quality.py"),
        ("_fingerprints", f"{ROOT}/experiment/engine/quality.py"),
        ("rows", f"{ROOT}/experiment/engine/fetch.py"),
        ("arrow", f"{ROOT}/experiment/engine/fetch.py"),
    ]
    assert profile.query_part(frames) == "query: _fingerprints (experiment/engine/quality.py)"
    assert profile.query_part(frames[:1]) == "query: other"
