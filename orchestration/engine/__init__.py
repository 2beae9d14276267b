"""The flow engine: one tick's set-based state transitions."""
