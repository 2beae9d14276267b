"""Delivery: destinations (one module per provider), rendering, the send-time re-check,
batching, retries, the send log, audience syncs and the local fake provider."""
