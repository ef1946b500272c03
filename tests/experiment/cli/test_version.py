"""``exp --version`` prints the installed distribution's version."""

import subprocess
import sys
from importlib.metadata import version

from typer.testing import CliRunner

from experiment.cli import app


def test_version_is_the_installed_distributions():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"seglift {version('seglift')}"


def test_version_runs_before_any_command_and_loads_no_numpy():
    code = (
        "import sys; from experiment.cli import app\n"
        "try:\n    app(['--version'])\nexcept SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "assert 'numpy' not in sys.modules, 'numpy imported for --version'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"seglift {version('seglift')}"
