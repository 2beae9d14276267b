"""The sync file format (``flows/library/syncs/*.yml``): the models (:mod:`~flowhouse.flows.sync.syncfile`)
and the reader that checks them against the project (:mod:`~flowhouse.flows.sync.files`)."""
