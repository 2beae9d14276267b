"""Running the flows: the engine (:mod:`flowhouse.orchestration.engine`, the tick's set-based state
transitions, no Dagster in it) and the Dagster definitions that schedule and show the whole cycle
(:mod:`flowhouse.orchestration.dagster`)."""
