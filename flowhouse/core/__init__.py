"""The ground floor: what every other layer stands on, importing nothing else of the project.

The warehouse connection (:mod:`~flowhouse.core.warehouse`), SQL building and rendering
(:mod:`~flowhouse.core.sql`), the state tables' DDL (:mod:`~flowhouse.core.state`), locks
(:mod:`~flowhouse.core.locks`), errors (:mod:`~flowhouse.core.errors`), the one clock
(:mod:`~flowhouse.core.clock`), the canonical inputs (:mod:`~flowhouse.core.contract`), the
project's paths, and the dbt runner with the model refresh (:mod:`~flowhouse.core.dbt`,
:mod:`~flowhouse.core.build`).
"""
