"""SendGrid: e-mail through the Mail Send API, contacts and lists for syncs, and its event
webhook read back as engagement."""
