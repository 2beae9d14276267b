"""The destinations a sync can keep mirrored, one :class:`~activation.sync.target.SyncTarget`
each: a Klaviyo list (:mod:`.klaviyo`), SendGrid contacts and lists (:mod:`.sendgrid`), a
paid-ads audience (:mod:`.audience`) and rows posted to a webhook (:mod:`.webhook`).

Every request is sent with retries (:mod:`.base`); each row is answered ``accepted`` (with the
destination's id for it), ``rejected`` (with the destination's reason) or ``retry``.
"""

from __future__ import annotations

from activation.sync.target import SyncTarget
from activation.sync.targets.audience import AudienceTarget
from activation.sync.targets.base import Retry
from activation.sync.targets.klaviyo import KlaviyoTarget
from activation.sync.targets.sendgrid import SendGridTarget
from activation.sync.targets.webhook import WebhookTarget

TARGETS: dict[str, type[SyncTarget]] = {
    "klaviyo": KlaviyoTarget,
    "sendgrid": SendGridTarget,
    "audience": AudienceTarget,
    "webhook": WebhookTarget,
}

__all__ = [
    "TARGETS",
    "AudienceTarget",
    "KlaviyoTarget",
    "Retry",
    "SendGridTarget",
    "WebhookTarget",
]
