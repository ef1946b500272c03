"""Presentation: HTML lift reports, terminal tables and results.json, from results only."""

from experiment.results.decision import RULE, Decision, decisions
from reports.html import render_html, write_html
from reports.serialize import write_results
from reports.terminal import decision_table, lift_table

__all__ = [
    "RULE",
    "Decision",
    "decision_table",
    "decisions",
    "lift_table",
    "render_html",
    "write_html",
    "write_results",
]
