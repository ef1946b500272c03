"""Experiments: config, assignment, engine aggregation, the stats engine, results, the CLI.

``experiment.assign(user_id, spec)`` gives one user's arm at request time; the
package imports nothing heavy (no Ibis, DuckDB or pandas) until you use the engine.
"""

from experiment.assignment import AssignmentSpec, assign

__all__ = ["AssignmentSpec", "assign"]
