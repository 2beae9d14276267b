-- Fold the write-ahead log into the database file after a run.
checkpoint
