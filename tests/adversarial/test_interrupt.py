"""Ctrl-C at any moment of a real ``exp`` process: exit 130, one line, previous outputs whole.

Each run is a real subprocess (``.venv/bin/exp``) sent SIGINT after a delay:
during start-up, while DuckDB aggregates or the search scans, in the write
phase (temp files written, none renamed) and in the publish phase (renames
under way). ``SEGLIFT_TEST_PAUSE`` holds the process in a phase long enough to
hit it, and keeps the timed runs from finishing before their signal.

Not covered: the first ~50 ms of the process (interpreter start-up and
``import experiment``, which loads no numpy), before any seglift code can install
a handler; nothing is open or written then, but Python prints its KeyboardInterrupt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXP = Path(sys.executable).with_name("exp")
_OUTPUTS = ("results.json", "report.html", "sums.parquet")
_BAD = ("Traceback", "Fatal Python error", "Query interrupted", "Error")


@pytest.fixture(scope="module")
def data(big_simulated: Path) -> Path:
    return big_simulated


def _previous(folder: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """Stand-in previous outputs: any new write would change them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(f"previous {name}\n".encode())
    return {name: (folder / name).read_bytes() for name in names}


def _start(argv: list[str], pause: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SEGLIFT_TEST_PAUSE": pause}
    return subprocess.Popen(
        [str(EXP), *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _interrupt(proc: subprocess.Popen[str], when: float | Path | tuple[Path, bytes]) -> str:
    """SIGINT after ``when`` seconds, or once a path appears / a file changes; its stderr."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if isinstance(when, float):
            time.sleep(when)
            break
        if isinstance(when, Path) and any(when.parent.glob(when.name)):
            break
        if isinstance(when, tuple) and when[0].read_bytes() != when[1]:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before its signal"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == ["interrupted"], stderr
    assert not any(bad in stderr for bad in _BAD), stderr
    return stderr


def _no_temporaries(folder: Path) -> None:
    left = [p.name for p in folder.rglob(".*") if p.suffix in (".tmp", ".bak")]
    assert not left, left


def _analyze(data: Path, out: Path) -> list[str]:
    exp = ["-e", str(data / "experiment.yaml")]
    return ["analyze", str(data), *exp, "--out", str(out), "--save-sums"]


@pytest.mark.parametrize("delay", [0.5, 1.0, 2.0, 3.0])
def test_analyze_interrupted_at_a_time_keeps_previous_outputs(data, tmp_path, delay):
    out = tmp_path / "results"
    before = _previous(out, _OUTPUTS)
    _interrupt(_start(_analyze(data, out), "write:60"), delay)
    assert {n: (out / n).read_bytes() for n in _OUTPUTS} == before
    _no_temporaries(tmp_path)


def test_analyze_interrupted_while_writing_keeps_previous_outputs(data, tmp_path):
    out = tmp_path / "results"
    before = _previous(out, _OUTPUTS)
    _interrupt(_start(_analyze(data, out), "write:60"), out / ".sums.parquet.*.tmp")
    assert {n: (out / n).read_bytes() for n in _OUTPUTS} == before
    _no_temporaries(tmp_path)


def test_analyze_interrupted_while_renaming_finishes_the_new_set(data, tmp_path):
    """SIGINT after the first rename is held until every file is replaced: no mix."""
    out = tmp_path / "results"
    before = _previous(out, _OUTPUTS)
    proc = _start(_analyze(data, out), "publish:1")
    _interrupt(proc, (out / "results.json", before["results.json"]))
    after = {n: (out / n).read_bytes() for n in _OUTPUTS}
    assert all(after[n] != before[n] for n in _OUTPUTS)
    assert after["results.json"].startswith(b"{")
    _no_temporaries(tmp_path)


_REFINED = ("p.yaml", "p.json", "r.html")


def _refine(data: Path, out: Path) -> list[str]:
    exp = ["-e", str(data / "experiment.yaml"), "--report", str(out / "r.html")]
    return ["refine", str(data), *exp, "--out", str(out / "p.yaml")]


@pytest.mark.parametrize("delay", [0.5, 1.0, 2.0, 3.0])
def test_refine_interrupted_at_a_time_keeps_previous_outputs(data, tmp_path, delay):
    out = tmp_path / "proposals"
    before = _previous(out, _REFINED)
    _interrupt(_start(_refine(data, out), "write:60"), delay)
    assert {n: (out / n).read_bytes() for n in _REFINED} == before
    _no_temporaries(tmp_path)


def test_refine_interrupted_while_writing_keeps_previous_outputs(data, tmp_path):
    out = tmp_path / "proposals"
    before = _previous(out, _REFINED)
    _interrupt(_start(_refine(data, out), "write:60"), out / ".r.html.*.tmp")
    assert {n: (out / n).read_bytes() for n in _REFINED} == before
    _no_temporaries(tmp_path)


def test_simulate_interrupted_leaves_no_staged_files(tmp_path):
    out = tmp_path / "sim"
    proc = _start(["simulate", "--users", "100000", "--out", str(out)], "")
    _interrupt(proc, 1.5)
    _no_temporaries(tmp_path)
    assert not (out / "customers.parquet").exists()
