"""Architecture checks that keep the package layout honest (issue 13).

Each check is a function from one module's path and source to its violations
(``path:line: what``), run over the tree by one test and, by a second test, over a
planted violation, so every check is shown to be able to fail:

- no module of the four packages over 400 lines, no function over 60 lines of
  code (docstring, blank and comment-only lines excluded);
- metric kinds ("proportion", "mean", "ratio", "retention") are compared by
  string only in ``experiment/plan.py``;
- no ``ibis``/``duckdb`` import under ``experiment/cli/``;
- no private name imported across modules (package code, benchmarks, tests),
  except a private module imported inside its own package (and another
  project's module of ``PRIVATE_IMPORTS``, each with its reason);
- no test module imports another test module or a conftest.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("experiment", "segments", "simulators", "reports")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
METRIC_KINDS = frozenset({"proportion", "mean", "ratio", "retention"})
KIND_HOME = "experiment/plan.py"
ENGINES = frozenset({"ibis", "duckdb"})

# Allow-lists, each entry with the reason it is accepted. Keep them empty.
LONG_MODULES: dict[str, str] = {}  # "experiment/x.py": "why"
LONG_FUNCTIONS: dict[str, str] = {}  # "experiment/x.py::Class.function": "why"
PRIVATE_IMPORTS: dict[str, str] = {  # "package.module": "why" (another project's private module)
    "numpy._core.multiarray": "NumPy's huge-page switch, _set_madvise_hugepage (NumPy 1.20 release "
    "notes; the NUMPY_MADVISE_HUGEPAGE variable is read at import only): the sequential "
    "timeline's short-lived arrays without huge pages (experiment/engine/timeline_local.py)",
}

Check = Callable[[str, str], list[str]]


def _files(*tops: str) -> Iterator[tuple[str, str]]:
    """(relative path, source) of every Python file under ``tops``."""
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def _module_name(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imports(rel: str, tree: ast.AST) -> Iterator[tuple[int, list[str]]]:
    """(line, dotted parts) of every imported module or name, relative imports resolved."""
    package = _module_name(rel).split(".")
    if not rel.endswith("__init__.py"):
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            for alias in node.names:
                yield node.lineno, [*module, alias.name]


# ------------------------------------------------------------------ the checks


def check_sizes(rel: str, source: str) -> list[str]:
    """Modules over 400 lines and functions over 60 lines of code."""
    out = []
    lines = source.splitlines()
    if len(lines) > MAX_MODULE_LINES and rel not in LONG_MODULES:
        out.append(f"{rel}: {len(lines)} lines (max {MAX_MODULE_LINES})")
    tree = ast.parse(source)

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                size = _code_lines(child, lines)
                if size > MAX_FUNCTION_LINES and f"{rel}::{name}" not in LONG_FUNCTIONS:
                    out.append(f"{rel}:{child.lineno}: {name}() has {size} lines of code")
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def _code_lines(func: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    """Lines of a function (decorators to end) less docstring, blank and comment lines."""
    start = min([func.lineno, *(d.lineno for d in func.decorator_list)])
    skip: set[int] = set()
    first = func.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        skip = set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    end = func.end_lineno or func.lineno
    return sum(
        1
        for number in range(start, end + 1)
        if number not in skip and (text := lines[number - 1].strip()) and not text.startswith("#")
    )


def _names_kind(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (
        isinstance(node, ast.Name) and node.id == "kind"
    )


def _kind_literals(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & METRIC_KINDS
    if isinstance(node, ast.Set | ast.Tuple | ast.List | ast.Dict):
        elts = node.keys if isinstance(node, ast.Dict) else node.elts
        return set().union(*(_kind_literals(e) for e in elts if e is not None))
    return set()


def check_metric_kinds(rel: str, source: str) -> list[str]:
    """``kind`` / ``.kind`` compared with a metric-kind literal outside experiment/plan.py."""
    if rel == KIND_HOME:
        return []
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            found = set().union(*(_kind_literals(o) for o in operands))
            if found and any(_names_kind(o) for o in operands):
                out.append(f"{rel}:{node.lineno}: metric kind compared with {sorted(found)}")
        elif isinstance(node, ast.Match) and _names_kind(node.subject):
            for case in node.cases:
                for pattern in ast.walk(case.pattern):
                    if isinstance(pattern, ast.MatchValue) and _kind_literals(pattern.value):
                        out.append(f"{rel}:{pattern.lineno}: metric kind matched by string")
    return out


def check_cli_engines(rel: str, source: str) -> list[str]:
    """An ``ibis`` or ``duckdb`` import under experiment/cli/."""
    if not rel.startswith("experiment/cli/"):
        return []
    return [
        f"{rel}:{line}: imports {'.'.join(parts)}"
        for line, parts in _imports(rel, ast.parse(source))
        if parts[0] in ENGINES
    ]


def _is_module(parts: list[str]) -> bool:
    path = ROOT.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def check_private_imports(rel: str, source: str) -> list[str]:
    """A private name imported from another module.

    A private *module* may be imported by modules of its own package (e.g.
    ``experiment/stats/cuped.py`` from ``experiment.stats._lift``) and by the tests
    that mirror that package (``tests/experiment/stats/test_beta.py`` tests
    ``experiment/stats/_beta.py``); a private name inside a module may not be
    imported at all.
    """
    importer = _module_name(rel).removeprefix("tests.")
    out = []
    for line, parts in _imports(rel, ast.parse(source)):
        if ".".join(parts) in PRIVATE_IMPORTS:
            continue
        for i, part in enumerate(parts):
            if not _is_private(part):
                continue
            owner = ".".join(parts[:i])
            inside = bool(owner) and (importer == owner or importer.startswith(f"{owner}."))
            if not (inside and _is_module(parts[: i + 1])):
                out.append(f"{rel}:{line}: imports private {'.'.join(parts)}")
                break
    return out


def _is_test_module(parts: list[str]) -> bool:
    return (
        parts[0] == "tests" and any(p.startswith("test_") for p in parts[1:])
    ) or "conftest" in parts


def check_test_imports(rel: str, source: str) -> list[str]:
    """A test module importing another test module or a conftest."""
    if not rel.startswith("tests/"):
        return []
    return [
        f"{rel}:{line}: imports test module {'.'.join(parts)}"
        for line, parts in _imports(rel, ast.parse(source))
        if _is_test_module(parts)
    ]


# ------------------------------------------------------------------ the tree

SCOPES: dict[str, tuple[Check, tuple[str, ...]]] = {
    "sizes": (check_sizes, PACKAGES),
    "metric_kinds": (check_metric_kinds, PACKAGES),
    "cli_engines": (check_cli_engines, ("experiment/cli",)),
    "private_imports": (check_private_imports, (*PACKAGES, "benchmarks", "tests")),
    "test_imports": (check_test_imports, ("tests",)),
}


@pytest.mark.parametrize("name", list(SCOPES))
def test_architecture_tree_has_no_violation(name):
    check, tops = SCOPES[name]
    violations = [v for rel, source in _files(*tops) for v in check(rel, source)]
    assert violations == [], "\n".join(violations)


def test_architecture_allow_lists_name_existing_code():
    for key in [*LONG_MODULES, *LONG_FUNCTIONS]:
        assert (ROOT / key.split("::")[0]).is_file(), key


# ------------------------------------------------------------------ the checks can fail


def _body(n: int, indent: str = "    ") -> str:
    return "\n".join(f"{indent}x{i} = {i}" for i in range(n))


_DOC = '"""' + "Doc.\n" * 80 + '"""'
PLANTS: list[tuple[Check, str, str, str]] = [
    (check_sizes, "reports/big.py", "x = 1\n" * (MAX_MODULE_LINES + 1), "401 lines"),
    (
        check_sizes,
        "reports/long.py",
        f"class A:\n    def f(self):\n        {_DOC}\n\n        # c\n{_body(60, ' ' * 8)}\n",
        "A.f() has 61 lines",
    ),
    (check_metric_kinds, "segments/x.py", "ok = metric.kind == 'ratio'\n", "['ratio']"),
    (check_metric_kinds, "simulators/x.py", "ok = kind in {'mean', 'retention'}\n", "'mean'"),
    (check_metric_kinds, "experiment/x.py", "match m.kind:\n    case 'mean':\n        pass\n", ""),
    (check_cli_engines, "experiment/cli/x.py", "def f():\n    import ibis.expr\n", "ibis"),
    (check_cli_engines, "experiment/cli/x.py", "from duckdb import connect\n", "duckdb"),
    (check_private_imports, "simulators/x.py", "from simulators.run import _cohort\n", "_cohort"),
    (check_private_imports, "reports/x.py", "from experiment.stats._lift import lift\n", "_lift"),
    (check_private_imports, "experiment/stats/x.py", "from ._lift import _se\n", "_se"),
    (
        check_private_imports,
        "tests/reports/test_x.py",
        "from experiment.stats import _beta\n",
        "_beta",
    ),
    (check_test_imports, "tests/a/test_x.py", "from tests.a.test_y import make\n", "test_y"),
    (check_test_imports, "tests/a/test_x.py", "from tests.conftest import write\n", "conftest"),
    (check_test_imports, "tests/a/test_x.py", "from . import test_y\n", "test_y"),
]
CLEAN: list[tuple[Check, str, str]] = [
    (check_sizes, "reports/ok.py", f"def f():\n    {_DOC}\n    # c\n\n{_body(59)}\n"),
    (check_metric_kinds, "experiment/plan.py", "ok = kind == 'ratio'\n"),
    (check_metric_kinds, "segments/x.py", "ok = seg.kind == 'rule' or kind in ('numeric',)\n"),
    (check_cli_engines, "experiment/analysis/x.py", "import ibis\n"),
    (check_private_imports, "experiment/stats/cuped.py", "from experiment.stats._lift import a\n"),
    (check_private_imports, "experiment/cli/power.py", "from ._app import app\n"),
    (check_private_imports, "experiment/cli/__init__.py", "from experiment.cli._app import app\n"),
    (
        check_private_imports,
        "tests/experiment/stats/test_b.py",
        "from experiment.stats import _beta\n",
    ),
    (check_private_imports, "tests/x.py", "from dataclasses import __all__\n"),
    (check_test_imports, "tests/a/test_x.py", "from tests.fixtures.results import make_row\n"),
]


@pytest.mark.parametrize(("check", "rel", "source", "phrase"), PLANTS)
def test_architecture_check_fails_on_planted_violation(check, rel, source, phrase):
    violations = check(rel, source)
    assert len(violations) == 1, violations
    assert phrase in violations[0]


@pytest.mark.parametrize(("check", "rel", "source"), CLEAN)
def test_architecture_check_passes_allowed_code(check, rel, source):
    assert check(rel, source) == []
