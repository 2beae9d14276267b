"""The sync file format (``flows/library/syncs/*.yml``): the models (:mod:`~flows.sync.syncfile`)
and the reader that checks them against the project (:mod:`~flows.sync.files`)."""
