"""The providers messages are delivered through, by the name ``delivery.routes`` uses.

=========  ==========================================  ===========================  ==============
name       what it does                                requests                     reconcile
=========  ==========================================  ===========================  ==============
sendgrid   e-mail: dynamic templates, or rendered      ``POST /v3/mail/send``, up   ``lookup``
           content through per-recipient               to 1,000 recipients each     (Email Activity
           substitutions (too large: sent alone)                                    API, not in the
                                                                                    shared
                                                                                    documents);
                                                                                    ``none`` when
                                                                                    ``lookup`` is
                                                                                    off
twilio     SMS from a Messaging Service or a number,   ``POST .../Messages.json``,  ``lookup``
           ``SendAt`` when a message carries a send    one per message              (message list
           time (the sender schedules e-mail only)                                  by recipient
                                                                                    and body)
klaviyo    an event per message that triggers a        ``POST /api/events``, one    ``idempotent``
           Klaviyo flow; audience syncs as profile     per message; ``POST          (``unique_id``
           properties                                  /api/profile-import``        = message id)
webhook    signed JSON for push, webhook actions and   ``POST`` to the action's     ``idempotent``
           admin tasks                                 ``url`` or the base URL,     (``Idempotency-
                                                       one per message              Key``)
audience   hashed e-mail and phone added to a paid-    ``POST {base}/{audience}     ``idempotent``
           ads customer list                           /users``, one per audience   (adding twice is
                                                       (up to 10,000 members)       harmless)
=========  ==========================================  ===========================  ==============

``reconcile`` is how a message left in flight by a crash is settled (see
:mod:`activation.destinations.base`). Every request but the audience's is validated in the tests
against the provider's published OpenAPI document (:mod:`activation.openapi`).
"""

from __future__ import annotations

from activation.destinations.audience import AudienceDestination
from activation.destinations.base import Destination
from activation.destinations.klaviyo import KlaviyoDestination
from activation.destinations.sendgrid import SendGridDestination
from activation.destinations.twilio import TwilioDestination
from activation.destinations.webhook import WebhookDestination

DESTINATIONS: dict[str, type[Destination]] = {
    cls.name: cls
    for cls in (
        SendGridDestination,
        TwilioDestination,
        KlaviyoDestination,
        WebhookDestination,
        AudienceDestination,
    )
}

__all__ = [
    "DESTINATIONS",
    "AudienceDestination",
    "Destination",
    "KlaviyoDestination",
    "SendGridDestination",
    "TwilioDestination",
    "WebhookDestination",
]
