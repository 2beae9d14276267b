"""Klaviyo: an event per message that starts a Klaviyo flow, and profiles and lists for syncs."""
