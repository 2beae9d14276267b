"""The Dagster definitions: dbt assets, the engine tick and sending as assets, one asset per
sync, asset checks, schedules and sensors (``dagster dev -m orchestration.dagster.definitions``).

They compose the engine (:mod:`orchestration.engine`) and activation (:mod:`activation`); neither
of those imports Dagster.
"""
