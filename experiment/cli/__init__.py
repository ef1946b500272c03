"""The ``exp`` command line: the only package that wires the layers together.

Each command group lives in its own module and registers itself on the shared
:data:`app`; importing this package registers them all. Every user mistake
surfaces as ``error: <one line>`` on stderr and exit code 2; outputs are
written atomically, so a failed run leaves nothing half-written.
"""

from experiment.cli import analyze, assign, demo, power, refine, segments, simulate
from experiment.cli._app import app

__all__ = ["analyze", "app", "assign", "demo", "power", "refine", "segments", "simulate"]
