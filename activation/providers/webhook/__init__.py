"""A generic webhook: signed JSON for push, webhook actions, admin tasks and synced rows."""
