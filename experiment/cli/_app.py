"""The ``exp`` application object and what every command shares: consoles and error handling.

Every user mistake surfaces as ``error: <one line>`` on stderr and exit code 2;
outputs are written atomically, so a failed run leaves nothing half-written.
Ctrl-C at any moment prints ``interrupted`` and exits 130
(:mod:`experiment.cli._interrupt`); the previous outputs stay as they were.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from experiment.cli._interrupt import INTERRUPTED, interruptible
from experiment.cli._usage import OneLineUsage
from experiment.errors import SegliftError

__all__ = ["app", "console", "table_width", "user_errors"]

if TYPE_CHECKING:
    from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="exp",
    help="seglift: per-segment lift with statistics you can bet on.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=OneLineUsage,  # usage errors as one line (experiment.cli._usage)
)


def _print_version(value: bool) -> None:
    """``exp --version``: the installed distribution's version, then exit."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("seglift")
        except PackageNotFoundError:  # run from a source tree that was never installed
            found = "unknown (not installed)"
        typer.echo(f"seglift {found}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed seglift version and exit.",
        ),
    ] = False,
) -> None:
    """seglift: per-segment lift with statistics you can bet on."""


_PIPED_WIDTH = 4096  # output for another program: lines are never wrapped nor cut


def _piped() -> bool:
    """Standard output goes to a file or a pipe, and no COLUMNS asks for a width."""
    import os
    import sys

    return not sys.stdout.isatty() and not os.environ.get("COLUMNS")


def console(*, stderr: bool = False, wide: bool = False) -> Console:
    """A rich console on stdout (results) or stderr (progress, errors); rich loads lazily.

    Piped results (no terminal, no ``COLUMNS``), and ``wide`` ones (``--wide``), are
    never wrapped nor cut at the terminal's width.
    """
    from rich.console import Console

    width = _PIPED_WIDTH if not stderr and (wide or _piped()) else None
    return Console(stderr=stderr, highlight=False, width=width)


def table_width(*, wide: bool = False) -> int | None:
    """The width terminal tables must fit (:mod:`reports.columns`); ``None``: keep every column.

    ``None`` with ``--wide`` and when the output is piped; else the terminal's (or
    ``COLUMNS``).
    """
    return None if wide or _piped() else console().width


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`SegliftError` into ``error: ...`` on stderr (exit 2); Ctrl-C into exit 130.

    The message is stripped of control characters and escaped for rich
    (:func:`reports.format.terminal_text`): it quotes names and values from the
    user's files.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with interruptible():
                return func(*args, **kwargs)
        except SegliftError as exc:
            from reports.format import terminal_text

            message = f"[bold red]error:[/] {terminal_text(exc)}"
            console(stderr=True).print(message, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            from experiment.files import remove_temporaries

            remove_temporaries()
            console(stderr=True).print("interrupted", soft_wrap=True)
            raise typer.Exit(code=INTERRUPTED) from None

    return wrapper
