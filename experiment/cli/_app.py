"""The ``exp`` application object and what every command shares: consoles and error handling.

Every user mistake surfaces as ``error: <one line>`` on stderr and exit code 2;
outputs are written atomically, so a failed run leaves nothing half-written.
Ctrl-C at any moment prints ``interrupted`` and exits 130: the SIGINT handler
removes this process's temporary files and ends the process at once
(``os._exit``), so no exception unwinds through a running DuckDB query (whose
own interrupt path can raise ``Query interrupted`` or abort the interpreter)
and the previous outputs stay as they were (renames defer SIGINT,
:mod:`experiment.files`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from experiment.errors import SegliftError

__all__ = ["INTERRUPTED", "app", "console", "user_errors"]

INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""

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
)


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (results) or stderr (progress, errors); rich loads lazily."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _interrupted(signum: int, frame: Any) -> None:
    """SIGINT: remove temporary files, say ``interrupted``, end the process (exit 130)."""
    from experiment.files import remove_temporaries

    remove_temporaries()
    with contextlib.suppress(Exception):  # what was printed before stays printed
        sys.stdout.flush()
    # a spinner or progress bar may own the line and hide the cursor on a terminal
    clear = "\r\x1b[2K\x1b[?25h" if os.isatty(2) else ""
    os.write(2, f"{clear}interrupted\n".encode())
    os._exit(INTERRUPTED)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C ends the command cleanly while it runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`SegliftError` into ``error: ...`` on stderr (exit 2); Ctrl-C into exit 130.

    The message is stripped of control characters and escaped for rich
    (:func:`reports.format.terminal_text`): it quotes names and values from the
    user's files.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with _interruptible():
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
