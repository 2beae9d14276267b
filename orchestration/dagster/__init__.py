"""The Dagster definitions: dbt assets, the engine tick and sending as assets, one asset per
sync, asset checks, schedules and sensors (``dagster dev -m flowhouse.orchestration.dagster.definitions``).

They compose the engine (:mod:`flowhouse.orchestration.engine`) and activation (:mod:`activation`); neither
of those imports Dagster.
"""
