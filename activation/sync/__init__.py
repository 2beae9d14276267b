"""Audience syncs: keep a segment, a list or any keyed model mirrored in a destination.

A sync file (``flows/library/syncs/*.yml``, :mod:`flowhouse.flows.sync.syncfile`) names a source, the fields
to send and how they map, a destination and a mode. Each run diffs the source against the snapshot
of what the destination was last told, in SQL (:mod:`flowhouse.activation.sync.diff`), sends only the
difference (:mod:`flowhouse.activation.providers`), and commits the snapshot only for the rows the destination
accepted (:mod:`flowhouse.activation.sync.run`). Runs and rows are logged in the warehouse.
"""
