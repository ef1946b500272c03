"""The ``exp`` command line: the only package that wires the layers together.

Each command group lives in its own module and registers itself on the shared
:data:`app`; importing this package registers them all. Every user mistake
surfaces as ``error: <one line>`` on stderr and exit code 2; outputs are
written atomically, so a failed run leaves nothing half-written.
"""

import signal
import sys
from pathlib import Path

from experiment.cli._interrupt import on_interrupt

if sys.argv and Path(sys.argv[0]).name == "exp":  # the console script, not an importer
    # before the commands' imports: Ctrl-C during start-up is a clean exit 130 too
    signal.signal(signal.SIGINT, on_interrupt)

from experiment.cli import analyze, assign, demo, power, refine, segments, simulate, target
from experiment.cli._app import app

__all__ = ["analyze", "app", "assign", "demo", "power", "refine", "segments", "simulate", "target"]
