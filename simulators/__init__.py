"""Synthetic customers and journeys with planted, known per-segment effects."""

from simulators.catalog import Scenario, builtin_scenarios, load_scenario
from simulators.run import SimulationSummary, simulate

__all__ = ["Scenario", "SimulationSummary", "builtin_scenarios", "load_scenario", "simulate"]
