"""The Dagster definitions of flowhouse: ``dagster dev -m
flowhouse.orchestration.dagster.definitions``.

The asset graph reads as the pipeline: raw inputs (external) → staging → core (the dbt models,
their tests as asset checks) → engine (``enrollments``, ``decisions``, ``messages``) →
activation (``sent_messages``) and the audience syncs (``sync_<id>``) → marts (the performance
marts, a second dbt multi-asset after delivery). One job,
``flowhouse_cycle``, runs it all at one time; a schedule and a sensor launch it (see
:mod:`flowhouse.orchestration.dagster.automation`). The resource ``flowhouse`` comes from the
environment (see :mod:`flowhouse.orchestration.dagster.resources`).

Before the definitions load, the dbt project must be parsed for the warehouse's adapter: ``python -m
flowhouse.orchestration.dagster.prepare``. Use ``orchestration/dagster/dagster.yaml`` as the
instance's ``dagster.yaml`` (in ``DAGSTER_HOME``): one run at a time, one step at a time on the
warehouse.
"""

from __future__ import annotations

from flowhouse.orchestration.dagster.location import build_definitions

defs = build_definitions()
