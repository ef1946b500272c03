"""Benchmark suite: every contender a whole process, as a ratio of a bare DuckDB floor.

For each ``--users`` size it reuses (or builds) ``benchmarks/analyze.py``'s synthetic
dataset (20 overlapping segments, or ``--segments N`` up to 100, plus ``all`` x 4
metrics: conversion, CTR as a ratio, revenue capped at its 99th percentile,
sessions), then runs, round-robin for
``--rounds`` rounds (so that a slow spell of the shared machine hits every
contender of a round alike):

* ``floor``: a Python process that imports DuckDB and runs the hand-written
  ``GROUP BY segment, arm`` query of ``benchmarks/analyze.py`` (the same sums);
* ``floor + stack``: the same process after importing the libraries an ``exp
  analyze`` run loads (:data:`STACK`: Ibis with its DuckDB backend, pyarrow,
  scipy.special, typer, pydantic, Jinja2, rich, PyYAML). No program built on
  that stack can cost less, so its ratio is the lowest any seglift contender
  can reach at that size;
* ``api``: a Python process calling ``experiment.analyze(folder, experiment.yaml)``;
* ``cli``: ``exp analyze`` (results.json, report.html, the terminal tables);
* ``cli --no-html``: the same without the report;
* ``sequential``: ``experiment.analyze`` with ``sequential: true`` (its ratio to
  ``api`` is issue 14's timeline cost);
* ``validate``, ``refine`` (``--with``): ``exp segments validate`` and ``exp refine``.

Each contender runs once per round as a child process; ``os.wait4`` gives its CPU
time (user + system, DuckDB's threads included) and its peak RSS. A contender's
ratio is the median over rounds of (its CPU time / the floor's CPU time in the
same round); wall ratios likewise. CPU ratios barely move when other processes
share the cores; wall ratios do. ``--base PYTHON`` also runs every seglift
contender with another interpreter (e.g. a venv on a checkout of an older
commit) in the same rounds, for before/after figures from one run.

Before the first round each interpreter's copy of the project is compiled to
bytecode (``compileall``), as ``pip install`` does for an installed package: with
``PYTHONDONTWRITEBYTECODE`` set, an editable install would otherwise compile its
140 modules from source in every run (about 0.1 s of CPU).

    python benchmarks/suite.py --quick                 # 200k and 1M users, 3 rounds
    python benchmarks/suite.py --users 10000000 --rounds 1 --only floor,api,cli
    python benchmarks/suite.py --users 1000000 --segments 100   # issue 21's 100 segments
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALL_CONTENDERS = (
    "floor",
    "floor + stack",
    "api",
    "cli",
    "cli --no-html",
    "sequential",
    "validate",
    "refine",
)
DEFAULT = ("floor", "floor + stack", "api", "cli", "cli --no-html")
STACK = (  # what `exp analyze` imports beyond DuckDB and the standard library
    "numpy",
    "pyarrow",
    "pyarrow.parquet",
    "ibis",
    "ibis.backends.duckdb",
    "scipy.special",
    "typer",
    "pydantic",
    "jinja2",
    "rich.console",
    "yaml",
)
PACKAGES = ("experiment", "segments", "reports", "simulators")


def child(what: str, folder: Path, out: Path, segments: int) -> None:
    """The work of one contender that runs Python code of this file (``--child``)."""
    if what.startswith("floor"):
        import importlib

        import duckdb

        for name in STACK if what == "floor + stack" else ():
            importlib.import_module(name)

        sys.path.insert(0, str(HERE))
        from analyze import baseline_group_sql  # a benchmark script of this folder

        con = duckdb.connect()
        con.execute("SET preserve_insertion_order = false")
        con.execute(baseline_group_sql(folder, segments)).fetchall()
        return
    import experiment

    yaml = folder / ("experiment-seq.yaml" if what == "sequential" else "experiment.yaml")
    results = experiment.analyze(folder, yaml)
    (out / "results.json").write_text(results.to_json())


def command(what: str, python: str, folder: Path, out: Path, segments: int) -> list[str]:
    """The command line of one contender, run by the interpreter ``python``."""
    # -P: not the current folder first on sys.path (a checkout there would shadow ``python``'s)
    exp = [python, "-P", "-c", "import sys; from experiment.cli import app; sys.exit(app())"]
    yaml = str(folder / "experiment.yaml")
    if what.startswith("cli"):
        return [*exp, "analyze", str(folder), "-e", yaml, "--out", str(out), *what.split()[1:]]
    if what == "validate":
        return [*exp, "segments", "validate", str(folder / "segments.yaml"), "--data", str(folder)]
    if what == "refine":
        return [*exp, "refine", str(folder), "-e", yaml, "--out", str(out / "proposals.yaml")]
    return [
        python,
        str(Path(__file__)),
        "--child",
        what,
        "--folder",
        str(folder),
        "--out",
        str(out),
        "--segments",
        str(segments),
    ]


def run(cmd: list[str]) -> tuple[float, float, float]:
    """Run one child to its end: (wall seconds, CPU seconds, peak RSS in MB)."""
    started = time.perf_counter()
    env = {**os.environ, "COLUMNS": "160"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)  # noqa: S603
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def compile_project(python: str) -> None:
    """Compile the project that ``python`` imports to bytecode, as an installed package is."""
    where = [
        python,
        "-P",
        "-c",
        "import experiment, os; print(os.path.dirname(experiment.__path__[0]))",
    ]
    root = Path(subprocess.run(where, check=True, capture_output=True, text=True).stdout.strip())  # noqa: S603
    dirs = [str(root / p) for p in PACKAGES if (root / p).is_dir()]
    subprocess.run([python, "-m", "compileall", "-q", *dirs], check=True)  # noqa: S603


def ensure(data: Path, users: int, segments: int) -> Path:
    """The dataset folder of ``users`` users (built once), with a sequential twin of the file."""
    sys.path.insert(0, str(HERE))
    from analyze import folder_name  # a benchmark script of this folder

    folder = data / folder_name(users, segments)
    if not (folder / "done").exists():
        print(f"building {users:,} users into {folder} ...", flush=True)
        build = [sys.executable, str(HERE / "analyze.py"), "--build-only", "--data", str(data)]
        build += ["--users", str(users), "--segments", str(segments)]
        subprocess.run(build, check=True)  # noqa: S603
    text = (folder / "experiment.yaml").read_text()
    (folder / "experiment-seq.yaml").write_text(text + "sequential: true\n")
    return folder


def measure(
    folder: Path, contenders: list[str], pythons: dict[str, str], rounds: int, segments: int
) -> dict[str, list[tuple[float, float, float]]]:
    """Run every (interpreter, contender) once per round, round-robin; the raw figures."""
    runs: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for what in contenders:
                for label, python in pythons.items():
                    if what.startswith("floor") and label != "new":
                        continue
                    key = what if what.startswith("floor") else f"{what} [{label}]"
                    out = Path(tmp) / key.replace(" ", "_")
                    out.mkdir(exist_ok=True)
                    got = run(command(what, python, folder, out, segments))
                    runs.setdefault(key, []).append(got)
                    print(
                        f"  round {r + 1} {key:28} {got[0]:7.2f} s wall {got[1]:7.2f} s CPU "
                        f"{got[2]:6.0f} MB",
                        flush=True,
                    )
    return runs


def report(users: int, segments: int, runs: dict[str, list[tuple[float, float, float]]]) -> None:
    """One table: each contender's median same-round CPU and wall ratio to the floor, RSS."""
    floor = runs["floor"]
    wall0 = statistics.median(w for w, _, _ in floor)
    cpu0 = statistics.median(c for _, c, _ in floor)
    rss0 = max(m for _, _, m in floor)
    print(
        f"\n{users:,} users, {segments} segments: floor {cpu0:.2f} s CPU, {wall0:.2f} s wall, "
        f"{rss0:.0f} MB peak RSS"
    )
    print("| contender | CPU ratio | wall ratio | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for key, got in runs.items():
        cpu = statistics.median(c / f[1] for (_, c, _), f in zip(got, floor, strict=True))
        wall = statistics.median(w / f[0] for (w, _, _), f in zip(got, floor, strict=True))
        med = statistics.median(c for _, c, _ in got)
        rss = max(m for _, _, m in got)
        print(f"| {key} | {cpu:.2f}x | {wall:.2f}x | {med:.2f} | {rss:.0f} |")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="*", default=None)
    parser.add_argument("--quick", action="store_true", help="200k and 1M users")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--segments", type=int, default=20, help="overlapping segments besides 'all' (1 to 100)"
    )
    parser.add_argument(
        "--only", help="comma-separated contenders (default: " + ",".join(DEFAULT) + ")"
    )
    parser.add_argument(
        "--with", dest="extra", default="", help="add contenders: sequential,validate,refine"
    )
    parser.add_argument("--base", help="another interpreter (a checkout of an older commit)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(
            os.environ.get("SEGLIFT_BENCH", Path(tempfile.gettempdir()) / "seglift-bench")
        ),
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder, args.out, args.segments)
        return
    sizes = args.users or ([200_000, 1_000_000] if args.quick or not args.users else [])
    chosen = args.only.split(",") if args.only else [*DEFAULT]
    chosen += [c for c in args.extra.split(",") if c]
    unknown = [c for c in chosen if c not in ALL_CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {unknown}; known: {', '.join(ALL_CONTENDERS)}")
    chosen = ["floor", *(c for c in chosen if c != "floor")]
    bindir = Path(sys.executable).parent
    pythons = {"new": str(bindir / "python")}
    if args.base:
        pythons["base"] = args.base
    for python in pythons.values():
        compile_project(python)
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    for users in sizes:
        folder = ensure(args.data, users, args.segments)
        runs = measure(folder, chosen, pythons, args.rounds, args.segments)
        report(users, args.segments, runs)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
