"""Ctrl-C: remove this process's temporary files, say ``interrupted``, exit 130.

The handler ends the process at once (``os._exit``) rather than raising
``KeyboardInterrupt``: an exception unwinding through a running DuckDB query
surfaces as DuckDB's own ``Query interrupted`` error, or aborts the interpreter
(``Fatal Python error: PyThreadState_Get``) while DuckDB's threads still run.
Nothing is lost by not unwinding: outputs are written to temporary files that
:func:`experiment.files.remove_temporaries` knows, and the renames that
publish them defer SIGINT, so the previous outputs stay whole.

Stdlib only: ``exp`` installs it before importing its commands.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["INTERRUPTED", "interruptible", "on_interrupt"]

INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""


def on_interrupt(signum: int, frame: Any) -> None:
    """The SIGINT handler: clean up, one ``interrupted`` line on stderr, exit 130."""
    from experiment.files import remove_temporaries

    remove_temporaries()
    with contextlib.suppress(Exception):  # what was printed before stays printed
        sys.stdout.flush()
    # a spinner or progress bar may own the line and hide the cursor on a terminal
    clear = "\r\x1b[2K\x1b[?25h" if os.isatty(2) else ""
    os.write(2, f"{clear}interrupted\n".encode())
    os._exit(INTERRUPTED)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C ends the process cleanly inside the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
