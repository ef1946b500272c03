"""Ibis's SQL compilers load one at a time: DuckDB's for an analysis, others when asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from experiment.engine.compilers import compiler_modules


def test_other_compilers_still_load_when_asked_for(dataset_dir: Path) -> None:
    code = (
        "import sys, ibis\n"
        "from experiment.engine.dataset import open_dataset\n"
        f"t = open_dataset({str(dataset_dir)!r}).customers\n"
        "print('ibis.backends.sql.compilers.snowflake' in sys.modules)\n"
        "print(t.user_id.count().to_pyarrow().as_py() > 0)\n"
        "print('QUALIFY' in ibis.to_sql(t.filter(ibis.row_number().over() == 0), "
        "dialect='snowflake').upper())\n"
        "from ibis.backends.sql.compilers import PostgresCompiler\n"
        "import ibis.backends.sql.compilers as sc\n"
        "print(PostgresCompiler is sc.postgres.PostgresCompiler, 'DuckDBCompiler' in sc.__all__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "True", "True"]


def testcompiler_modules_reads_only_the_form_ibis_ships() -> None:
    shipped = (
        '"""Doc."""\nfrom __future__ import annotations\n__all__ = ["ACompiler", "BCompiler"]\n'
        "from ibis.backends.sql.compilers.a import ACompiler\n"
        "from ibis.backends.sql.compilers.bee import BCompiler\n"
    )
    assert compiler_modules(shipped) == {"ACompiler": "a", "BCompiler": "bee"}
    assert compiler_modules(shipped + "REGISTRY = {}\n") is None  # anything else: as usual
    assert compiler_modules(shipped.replace(', "BCompiler"', "")) is None  # __all__ differs
    assert compiler_modules(shipped.replace("import BCompiler", "import BCompiler as B")) is None
