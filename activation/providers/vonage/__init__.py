"""Vonage: Viber Business Messages through the Messages API, and its signed status webhooks read
back as engagement."""
