"""Presentation: HTML lift reports, terminal tables and results.json, from results only."""
