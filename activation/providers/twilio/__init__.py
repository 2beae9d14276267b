"""Twilio: SMS through the Messages API, and its status callbacks read back as engagement."""
