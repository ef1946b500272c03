"""Compare two results.json files field by field: numbers to a relative tolerance, the rest exactly.

Used to show that a change of structure left the analysis unchanged (run
``exp demo`` before and after, then compare), and that ``--from-sums`` gives the
analysis of the data. Prints one line per difference and a summary line; exits
1 when anything differs, 0 otherwise.

    python benchmarks/compare_results.py before/results.json after/results.json --rtol 1e-12
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def _scalar_differs(a: Any, b: Any, *, rtol: float) -> bool:
    """Whether two JSON scalars differ (bools exactly, numbers to ``rtol``, NaN equals NaN)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is not b
    if isinstance(a, int | float) and isinstance(b, int | float):
        both_nan = math.isnan(a) and math.isnan(b)
        return not (both_nan or math.isclose(a, b, rel_tol=rtol, abs_tol=0.0))
    return bool(a != b)


def differences(a: Any, b: Any, *, rtol: float, path: str = "$") -> list[str]:
    """Every place where ``a`` and ``b`` differ; floats within ``rtol`` (relative) are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in the first" for k in a if k not in b]
        out += [f"{path}.{k}: only in the second" for k in b if k not in a]
        for k in a:
            if k in b:
                out += differences(a[k], b[k], rtol=rtol, path=f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)} items"]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += differences(x, y, rtol=rtol, path=f"{path}[{i}]")
        return out
    return [f"{path}: {a!r} != {b!r}"] if _scalar_differs(a, b, rtol=rtol) else []


def count_leaves(doc: Any) -> int:
    """How many scalar fields a JSON document holds."""
    if isinstance(doc, dict):
        return sum(count_leaves(v) for v in doc.values())
    if isinstance(doc, list):
        return sum(count_leaves(v) for v in doc)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--rtol", type=float, default=1e-12, help="relative tolerance")
    args = parser.parse_args(argv)
    a = json.loads(args.first.read_text(encoding="utf-8"))
    b = json.loads(args.second.read_text(encoding="utf-8"))
    diffs = differences(a, b, rtol=args.rtol)
    for line in diffs[:50]:
        print(line)
    print(
        f"{count_leaves(a)} fields compared, {len(diffs)} differ "
        f"(numbers to a relative {args.rtol:g})"
    )
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
