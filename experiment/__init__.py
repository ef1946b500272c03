"""Experiments: config, assignment, engine aggregation, the stats engine, results, the CLI."""
