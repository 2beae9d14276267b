"""Running the flows: the engine (:mod:`orchestration.engine`, the tick's set-based state
transitions, no Dagster in it) and the Dagster definitions that schedule and show the whole cycle
(:mod:`orchestration.dagster`)."""
