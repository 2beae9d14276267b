"""Dagster definitions and the engine tick that runs the flows' state transitions.

Runs the same cycle as the CLI: dbt models, engine assets, activation, schedules, sensors and
checks.
"""
