"""The hostile-input corpus: every case exits as promised and writes nothing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.corpus import COMMANDS, Case, all_cases, make_workspace, run_case

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, pristine_workspace: Path, tmp_path: Path) -> None:
    run_case(case, make_workspace(pristine_workspace, tmp_path / "ws"))


def test_case_ids_are_unique() -> None:
    duplicated = [k for k, n in Counter(c.id for c in CASES).items() if n > 1]
    assert not duplicated


def test_every_case_names_a_known_command() -> None:
    assert {c.command for c in CASES} <= set(COMMANDS)


def test_the_corpus_covers_every_command_with_150_cases_or_more() -> None:
    assert len(CASES) >= 150
    assert {c.command for c in CASES} == set(COMMANDS)
    assert len({c.category for c in CASES}) >= 10
