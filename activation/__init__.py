"""Delivery: destinations (one module per provider), rendering, send-time checks, batching, retries
and the
send log."""
