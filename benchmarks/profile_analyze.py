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
"""

from __future__ import annotations

import argparse
import collections
import os
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
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from analyze import folder_name  # a benchmark script of this folder

    folder = args.data / folder_name(args.users, args.segments)
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
