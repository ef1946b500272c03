"""Where each second of ``exp analyze`` goes: a py-spy profile, summed by part.

Runs ``exp analyze DATA -e DATA/experiment.yaml`` under ``py-spy record`` (``pip
install py-spy``; raw collapsed stacks, 200 samples a second, main thread only)
and sums the samples into parts: the imports (by top-level package), each engine
query (by the seglift function that runs it), the statistics, the report, the
terminal tables. DuckDB's own threads are native: their work shows as the main
thread waiting in the query that started them, so the parts add up to the
process's wall time, not to its CPU time.

    python benchmarks/profile_analyze.py --users 200000
    python benchmarks/profile_analyze.py --users 200000 --python /path/to/other/venv/bin/python
    python benchmarks/profile_analyze.py --users 1000000 --segments 100

``--cpu`` (no py-spy needed) counts CPU time instead, DuckDB's threads included:
the child process times each engine query (by the seglift function that runs it,
its Ibis compilation included), the temporary per-user table, the statistics,
results.json, the report and the terminal output with ``getrusage``, each part
without the parts inside it; the rest is Python (imports, building expressions).

    python benchmarks/profile_analyze.py --users 1000000 --segments 100 --cpu
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RATE = 200
OURS = ("experiment/", "reports/", "segments/")
FETCH = "experiment/engine/fetch.py"  # runs every query: its caller names the part


def _relative(path: str) -> str:
    """A frame's file relative to site-packages or to the checkout (py-spy may show either)."""
    if "site-packages/" in path:
        return path.rsplit("site-packages/", maxsplit=1)[-1]
    for root in OURS:
        if f"/{root}" in path:
            return root + path.split(f"/{root}", 1)[1]
    return path


def part(frames: list[str]) -> str:  # noqa: PLR0911 (one return per part)
    """The part one main-thread stack counts for."""
    paths = [_relative(f.rsplit("(", 1)[-1].split(":")[0]) for f in frames]
    for f, p in zip(frames, paths, strict=True):  # the outermost import of a package
        if f.startswith("<module> (") and p != "<string>" and not p.startswith(OURS):
            return f"import {p.split('/')[0].removesuffix('.py')}"
    ours = [(f.split(" (")[0], p) for f, p in zip(frames, paths, strict=True) if p.startswith(OURS)]
    if any(
        p.startswith(OURS) and f.startswith("<module> (")
        for f, p in zip(frames, paths, strict=True)
    ):
        return "import seglift's own modules"
    if not ours:
        return "interpreter start-up and CLI parsing"
    names = [n for n, _ in ours]
    files = [p for _, p in ours]
    if "render_html" in names:
        return "HTML report" + (
            " (charts)" if any(p.startswith("reports/charts") for p in files) else ""
        )
    if any(p.startswith("reports/terminal") for p in files):
        return "terminal tables"
    if "analyze_cells" in names or "analyze_sums" in names:
        return "statistics (analyze_cells)"
    if "to_json" in names:
        return "results.json text"
    engine = [
        n
        for n, p in ours
        if p.startswith(("experiment/engine", "segments/")) and p != FETCH  # the caller counts
    ]
    if engine:
        if "cache" in " ".join(frames[-12:]).lower() and "_cell_table" in names:
            return "engine: per-user temp table (Table.cache)"
        return f"engine: {engine[-1]}"
    return f"other: {names[-1]} ({files[-1]})"


def query_part(frames: list[tuple[str, str]]) -> str:
    """The part a query counts for: the innermost seglift function but the fetch helper.

    ``frames`` are ``(function, file)``, outermost first.
    """
    for name, path in reversed(frames):
        rel = _relative(path)
        if rel.startswith(OURS) and rel != FETCH:
            return f"query: {name} ({rel})"
    return "query: other"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_child(argv: list[str]) -> None:
    """Run ``exp analyze argv`` here, timing its parts; print ``part<TAB>seconds`` lines."""
    import inspect

    import ibis.backends.duckdb
    import rich.console

    import experiment.api
    import experiment.engine.fetch
    import experiment.results
    import reports.html
    from experiment.cli import app

    seconds: collections.Counter[str] = collections.Counter()
    inner = [0.0]  # CPU of timed parts inside the one running

    def timed(owner: object, attr: str, label: str | None) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def wrapper(*a: object, **k: object) -> object:
            name = label
            if name is None:
                stack = [(f.function, f.filename) for f in inspect.stack(0)[1:]]
                name = query_part(stack[::-1])
            outer, inner[0], started = inner[0], 0.0, _cpu()
            try:
                return original(*a, **k)
            finally:
                spent = _cpu() - started
                seconds[name] += spent - inner[0]
                inner[0] = outer + spent

        setattr(owner, attr, wrapper)

    for helper in ("arrow", "numpy_columns"):
        original = getattr(experiment.engine.fetch, helper)
        timed(experiment.engine.fetch, helper, None)
        for module in list(sys.modules.values()):  # modules that imported the helper by name
            ours = module.__name__.startswith(("experiment.", "segments.", "reports."))
            if ours and getattr(module, helper, None) is original:
                setattr(module, helper, getattr(experiment.engine.fetch, helper))
    timed(ibis.backends.duckdb.Backend, "create_table", "temporary per-user table")
    timed(experiment.api, "analyze_sums", "statistics (analyze_sums)")
    timed(experiment.results.AnalysisResults, "to_json", "results.json text")
    timed(reports.html, "render_html", "HTML report")
    timed(rich.console.Console, "print", "terminal output")
    seconds["interpreter start-up and imports"] = _cpu()
    sys.argv = ["exp", "analyze", *argv]
    try:
        app()
    except SystemExit as done:
        if done.code:
            raise
    seconds["Python: the rest (expressions, CLI, ...)"] = _cpu() - sum(seconds.values())
    for name, s in seconds.items():
        print(f"{name}\t{s}", file=sys.stderr)


def cpu_parts(python: str, folder: Path, extra: list[str]) -> collections.Counter[str]:
    """The CPU seconds of each part of one ``exp analyze`` run (:func:`cpu_child`)."""
    with tempfile.TemporaryDirectory() as tmp:
        exp = [str(folder), "-e", str(folder / "experiment.yaml"), "--out", tmp, *extra]
        cmd = [python, "-P", str(Path(__file__).resolve()), "--cpu-child", "--", *exp]
        env = {**os.environ, "COLUMNS": "160"}
        done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)  # noqa: S603
    parts: collections.Counter[str] = collections.Counter()
    for line in done.stderr.splitlines():
        if "\t" in line:
            name, value = line.rsplit("\t", 1)
            parts[name] += float(value)
    return parts


def _table(title: str, kind: str, seconds: collections.Counter[str]) -> None:
    """The parts, largest first, as a Markdown table with their shares."""
    total = sum(seconds.values())
    print(f"{title}: {total:.2f} s of {kind} (mean of the runs)")
    print("| share | seconds | part |\n|---|---|---|")
    for name, s in seconds.most_common():
        print(f"| {100 * s / total:.1f}% | {s:.2f} | {name} |")


def summarise(raw: Path) -> list[tuple[str, float]]:
    """Seconds per part, largest first."""
    seconds: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        if not frames or not frames[0].startswith("<module> (<string>"):
            continue  # not the main thread (rich's refresh thread, ...)
        seconds[part(frames)] += int(count) / RATE
    return seconds.most_common()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--segments", type=int, default=20, help="the dataset's (suite.py's)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(
            os.environ.get("SEGLIFT_BENCH", Path(tempfile.gettempdir()) / "seglift-bench")
        ),
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs to average (a noisy machine)")
    parser.add_argument("--args", default="", help="extra exp analyze options, e.g. --no-html")
    parser.add_argument("--cpu", action="store_true", help="CPU time per part (no py-spy)")
    parser.add_argument("--cpu-child", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.cpu_child:
        cpu_child([a for a in rest if a != "--"])
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from analyze import folder_name  # a benchmark script of this folder

    folder = args.data / folder_name(args.users, args.segments)
    if args.cpu:
        cpu: collections.Counter[str] = collections.Counter()
        for _ in range(args.repeat):
            for name, s in cpu_parts(args.python, folder, args.args.split()).items():
                cpu[name] += s / args.repeat
        _table(f"exp analyze, {args.users:,} users, {args.segments} segments", "CPU", cpu)
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    seconds: collections.Counter[str] = collections.Counter()
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.txt"
            exp = [
                args.python,
                "-P",
                "-c",
                "import sys; from experiment.cli import app; sys.exit(app())",
            ]
            exp += ["analyze", str(folder), "-e", str(folder / "experiment.yaml"), "--out", tmp]
            exp += args.args.split()
            cmd = [spy, "record", "-r", str(RATE), "-f", "raw", "-o", str(raw), "--", *exp]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
            for name, s in summarise(raw):
                seconds[name] += s / args.repeat
    parts = seconds.most_common()
    total = sum(s for _, s in parts)
    print(
        f"exp analyze, {args.users:,} users ({args.python}): {total:.2f} s of main-thread samples"
        f" (mean of {args.repeat} runs)"
    )
    print("| share | seconds | part |\n|---|---|---|")
    for name, s in parts:
        print(f"| {100 * s / total:.1f}% | {s:.2f} | {name} |")


if __name__ == "__main__":
    main()
