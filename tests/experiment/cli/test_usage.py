import pytest
from typer.testing import CliRunner

from experiment.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["simulate", "--users", "0"],
            "error: --users: input should be greater than or equal to 1",
        ),
        (["demo", "--days", "x"], "error: --days: input should be a valid integer"),
        (["analyze", "data"], "error: --experiment: missing; this option is required"),
        (["report"], "error: RESULTS: missing; this argument is required"),
        (
            ["analyze", "d", "-e", "e", "--outt", "o"],
            "error: --outt: no such option; did you mean --out?",
        ),
        (["anlyze"], "error: no such command 'anlyze'. Did you mean 'analyze'?"),
        (["segments", "shwo"], "error: no such command 'shwo'"),
        (["simulate", "--seed"], "error: --seed: requires an argument"),
        (["segments", "show", "s.yaml", "-d", "d", "--as-of", "2026-13-45"], "error: --as-of:"),
    ],
)
def test_usage_errors_are_one_line_exit_2(argv, line):
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert lines == [lines[0]]
    assert lines[0].startswith(line)
    assert "Usage:" not in result.output
    assert "╭" not in result.output


def test_usage_error_strips_control_characters():
    result = runner.invoke(app, ["segments", "show", "s", "-d", "d", "--as-of", "\x1b]0;x\x07"])
    assert result.exit_code == 2
    assert not any(c in result.stderr for c in "\x1b\x07")


@pytest.mark.parametrize("argv", [["--help"], ["analyze", "--help"], ["segments", "--help"]])
def test_help_is_untouched(argv):
    result = runner.invoke(app, argv)
    assert result.exit_code == 0
    assert "Usage: exp" in result.stdout
    assert "--help" in result.stdout
    assert result.stderr == ""


def test_a_group_without_a_command_still_shows_its_help():
    result = runner.invoke(app, ["segments"])
    assert "validate" in result.output
    assert "error:" not in result.output
