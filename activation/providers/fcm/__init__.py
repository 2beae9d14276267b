"""Firebase Cloud Messaging HTTP v1: native mobile (Android, iOS) and web push to device tokens."""
