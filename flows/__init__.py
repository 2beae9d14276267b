"""The flow language: reading, validating and compiling flow, settings and sync files.

The Python lives here; the flows a store edits (YAML, templates, ``_settings.yml``, ``syncs/``)
live apart in ``flows/library/``. :mod:`flowhouse.flows.load` is the one reader of a flows folder.
"""
