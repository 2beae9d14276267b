"""The providers, by the name ``delivery.routes`` and sync files use: one package each
(``activation/providers/<name>/``) holding its configuration model (``config.py``, the section
``delivery.<name>`` of ``_settings.yml``), its message destination (``destination.py``), its sync
target (``sync.py``), its part of the inbound webhook mapping (``inbound.py``) and its handlers in
the fake provider (``fake.py``), where it has them. :data:`PROVIDERS` lists them; nothing else
names a provider package.

Messages:

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
           and WhatsApp (an approved template by       one per message              (message list
           ``ContentSid``); ``SendAt`` when a message                               by recipient
           carries a send time
                                                                                    and body)
klaviyo    an event per message that triggers a        ``POST /api/events``, one    ``idempotent``
           Klaviyo flow; audience syncs as profile     per message; ``POST          (``unique_id``
           properties                                  /api/profile-import``        = message id)
webhook    signed JSON for push, webhook actions and   ``POST`` to the action's     ``idempotent``
           admin tasks                                 ``url`` or the base URL,     (``Idempotency-
                                                       one per message              Key``)
fcm        native mobile and web push to each valid    ``POST /v1/projects/{p}/     ``none`` (no
           device token (Firebase Cloud Messaging      messages:send``, one per     idempotency key,
           HTTP v1); dead tokens recorded              device token                 no lookup)
audience   hashed e-mail and phone added to a paid-    ``POST {base}/{audience}     ``idempotent``
           ads customer list                           /users``, one per audience   (adding twice is
                                                       (up to 10,000 members)       harmless)
vonage     Viber Business Messages from the store's    ``POST /v0.1/messages/``,    ``none`` (no
           Viber service id (promotion category for    one per message              lookup, no
           marketing, transaction otherwise)                                        idempotency key)
spree      flow actions and coupon codes in a Spree    ``PATCH .../users/{id}``     ``idempotent``
           store (Platform API): a customer's whole    per action; a coupon: look   (the whole
           action state in ``private_metadata``; a     up, create the promotion,    state; a coupon
           promotion per code                          its discount actions         looked up first)
=========  ==========================================  ===========================  ==============

``onsite`` messages are no request: the sender writes them to ``flowhouse.onsite_messages``
(:mod:`flowhouse.activation.onsite`) and a storefront polls them through ``flowhouse receive``;
its seen and dismissed posts are its part of the inbound mapping.

``reconcile`` is how a message left in flight by a crash is settled (see
:mod:`flowhouse.activation.providers.base`). Every request but the audience's is validated in the
tests against the provider's published OpenAPI document (:mod:`flowhouse.activation.openapi`;
FCM's, a Google discovery document: :mod:`flowhouse.activation.discovery`).

Syncs keep a destination object mirrored, one :class:`~flowhouse.activation.sync.target.SyncTarget`
each: a Klaviyo list, SendGrid contacts and lists, a paid-ads audience and rows posted to a webhook.
Every request is sent with retries (:mod:`flowhouse.activation.providers.target`); each row is
answered ``accepted`` (with the destination's id for it), ``rejected`` (with the destination's
reason) or ``retry``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowhouse.activation.fake.common import FakeApi
from flowhouse.activation.providers.audience.config import Audience
from flowhouse.activation.providers.audience.destination import AudienceDestination
from flowhouse.activation.providers.audience.fake import FAKE as AUDIENCE_FAKE
from flowhouse.activation.providers.audience.sync import AudienceTarget
from flowhouse.activation.providers.base import Destination
from flowhouse.activation.providers.config import ProviderConfig
from flowhouse.activation.providers.fcm.config import Fcm
from flowhouse.activation.providers.fcm.destination import FcmDestination
from flowhouse.activation.providers.fcm.fake import FAKE as FCM_FAKE
from flowhouse.activation.providers.inbound import Inbound
from flowhouse.activation.providers.klaviyo.config import Klaviyo
from flowhouse.activation.providers.klaviyo.destination import KlaviyoDestination
from flowhouse.activation.providers.klaviyo.fake import FAKE as KLAVIYO_FAKE
from flowhouse.activation.providers.klaviyo.sync import KlaviyoTarget
from flowhouse.activation.providers.onsite.config import Onsite
from flowhouse.activation.providers.onsite.inbound import INBOUND as ONSITE_INBOUND
from flowhouse.activation.providers.sendgrid import signature as sendgrid_signature
from flowhouse.activation.providers.sendgrid.config import SendGrid
from flowhouse.activation.providers.sendgrid.destination import SendGridDestination
from flowhouse.activation.providers.sendgrid.fake import FAKE as SENDGRID_FAKE
from flowhouse.activation.providers.sendgrid.inbound import INBOUND as SENDGRID_INBOUND
from flowhouse.activation.providers.sendgrid.sync import SendGridTarget
from flowhouse.activation.providers.spree.config import Spree
from flowhouse.activation.providers.spree.destination import SpreeDestination
from flowhouse.activation.providers.spree.fake import FAKE as SPREE_FAKE
from flowhouse.activation.providers.twilio.config import Twilio
from flowhouse.activation.providers.twilio.destination import TwilioDestination
from flowhouse.activation.providers.twilio.fake import FAKE as TWILIO_FAKE
from flowhouse.activation.providers.twilio.inbound import INBOUND as TWILIO_INBOUND
from flowhouse.activation.providers.vonage import signature as vonage_signature
from flowhouse.activation.providers.vonage.config import Vonage
from flowhouse.activation.providers.vonage.destination import VonageDestination
from flowhouse.activation.providers.vonage.fake import FAKE as VONAGE_FAKE
from flowhouse.activation.providers.vonage.inbound import INBOUND as VONAGE_INBOUND
from flowhouse.activation.providers.webhook.config import Webhook
from flowhouse.activation.providers.webhook.destination import WebhookDestination
from flowhouse.activation.providers.webhook.fake import FAKE as WEBHOOK_FAKE
from flowhouse.activation.providers.webhook.sync import WebhookTarget
from flowhouse.activation.sync.target import SyncTarget


@dataclass(frozen=True)
class Provider:
    """One provider's parts: its configuration model, its destination, and where it has them its
    sync target and its part of the inbound webhook mapping."""

    name: str
    config: type[ProviderConfig]
    #: None: no HTTP destination (onsite messages are written to a warehouse table).
    destination: type[Destination] | None
    target: type[SyncTarget] | None = None
    inbound: Inbound | None = None
    fake: FakeApi | None = None


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "sendgrid",
            SendGrid,
            SendGridDestination,
            SendGridTarget,
            SENDGRID_INBOUND,
            SENDGRID_FAKE,
        ),
        Provider("twilio", Twilio, TwilioDestination, None, TWILIO_INBOUND, TWILIO_FAKE),
        Provider("klaviyo", Klaviyo, KlaviyoDestination, KlaviyoTarget, fake=KLAVIYO_FAKE),
        Provider("webhook", Webhook, WebhookDestination, WebhookTarget, fake=WEBHOOK_FAKE),
        Provider("audience", Audience, AudienceDestination, AudienceTarget, fake=AUDIENCE_FAKE),
        Provider("vonage", Vonage, VonageDestination, None, VONAGE_INBOUND, VONAGE_FAKE),
        Provider("fcm", Fcm, FcmDestination, fake=FCM_FAKE),
        Provider("onsite", Onsite, None, inbound=ONSITE_INBOUND),
        Provider("spree", Spree, SpreeDestination, fake=SPREE_FAKE),
    )
}

#: The message destinations, by name.
DESTINATIONS: dict[str, type[Destination]] = {
    n: p.destination for n, p in PROVIDERS.items() if p.destination is not None
}

#: The sync targets, by name (the providers a sync file can name).
TARGETS: dict[str, type[SyncTarget]] = {
    n: p.target for n, p in PROVIDERS.items() if p.target is not None
}

#: The providers' parts of the inbound webhook mapping (:mod:`flowhouse.activation.engagement`).
INBOUND: tuple[Inbound, ...] = tuple(p.inbound for p in PROVIDERS.values() if p.inbound)

#: The providers' endpoints in the fake provider (:mod:`flowhouse.activation.fake.app`), by name.
FAKES: dict[str, FakeApi] = {n: p.fake for n, p in PROVIDERS.items() if p.fake}

#: SendGrid's Signed Event Webhook (checked by :mod:`flowhouse.activation.receiver`) is
#: :mod:`flowhouse.activation.providers.sendgrid.signature`, reached as ``sendgrid_signature``;
#: Vonage's signed webhooks (JWT) are ``vonage_signature``.

__all__ = [
    "DESTINATIONS", "FAKES", "INBOUND", "PROVIDERS", "TARGETS", "Provider", "sendgrid_signature",
    "vonage_signature",
]  # fmt: skip
