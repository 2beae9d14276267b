"""Onsite messages: written to a warehouse table, polled by the storefront through ``flowhouse
receive`` with a signed customer token, seen and dismissed coming back as engagement events."""
