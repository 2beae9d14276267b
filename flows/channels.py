"""The channels a message goes out on, each described once.

Every list of channels in flowhouse is read from :data:`CHANNELS`: the flow language's and the
settings' channel names (the literals below, checked against the registry by
``tests/flows/test_channel_registry.py``), the address and consent columns the send-time rules
read (:mod:`flowhouse.rules.sendtime`), the default route, the length limit on rendered output
(:mod:`flowhouse.flows.bounds`), the template endings, the channels an automatic winner's metrics
count, the words and icons of the report and of ``flowhouse status``, the channels of
flowhouse's own links and their unsubscribe page. The dbt models compute the consent,
unsubscribe and suppression columns a channel names here (``core.customer_attributes``); a test
checks they document exactly those.

Adding a channel is one :class:`ChannelSpec` here (and its name in the literals), the consent SQL
of the dbt models, and the provider that sends it (``activation/providers/``); see
docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

#: Every message channel (a send step's ``channel``).
Channel = Literal["email", "sms", "push", "webhook", "onsite", "whatsapp", "viber"]
#: The channels caps and smart sending count (settings' ``smart_sending``, a cap's ``channel``).
PacedChannel = Literal["email", "sms", "push", "onsite", "whatsapp", "viber"]
#: The channels with quiet hours (settings' ``quiet_hours``).
QuietChannel = Literal["email", "sms", "push", "whatsapp", "viber"]

#: Smart sending's default window on the channels that have one.
_DAY = timedelta(hours=16)


@dataclass(frozen=True)
class ChannelSpec:
    """One channel: what the language, the send-time rules, the renderer and the readers know of
    it. Column names are those of ``core.customer_attributes``."""

    name: str
    #: The title of its send step in the report's diagram (``Text message``).
    label: str
    #: Its name inside a sentence of ``flowhouse status`` and ``preview`` (``e-mail``).
    noun: str
    #: The provider it goes through unless ``delivery.routes`` names another.
    route: str
    #: The column holding the customer's address on it; None: it needs none (a webhook).
    address: str | None
    #: The address when it goes to devices (push through FCM): then its consent applies too.
    device_address: str | None = None
    #: Marketing needs an opt-in: ``has_<name>_consent``, ``has_<name>_opt_in`` and
    #: ``<name>_unsubscribed_at``.
    consent: bool = False
    #: Marketing needs no opt-in, only no opt-out: ``<name>_unsubscribed_at``.
    opt_out: bool = False
    #: A hard bounce or complaint suppresses the address: ``<name>_suppressed_at``.
    suppression: bool = False
    #: Caps and smart sending count its marketing messages (``smart_sending.<name>``, a cap's
    #: ``channel``).
    paced: bool = False
    #: Its sends move out of ``quiet_hours.<name>``.
    quiet_hours: bool = False
    #: A flow's own ``smart_sending`` window applies to it (else only the store's setting).
    flow_smart_sending: bool = False
    #: Smart sending's window in the shipped settings; None: off unless set.
    smart_sending: timedelta | None = None
    #: Its messages spend a cap on ``any`` channel.
    counts_for_any: bool = True
    #: The longest rendered output, in characters.
    output_chars: int = 1_000_000
    #: The endings its templates may have.
    endings: tuple[str, ...] = (".txt.j2",)
    #: Its icon in the report's diagram, an SVG path on a 16 by 16 grid.
    icon: str = ""
    #: Its opens are recorded (an automatic winner's ``open_rate``).
    opens: bool = False
    #: Its link clicks are recorded per message (an automatic winner's ``click_rate``).
    clicks: bool = False
    #: What the preferences page of ``flowhouse receive`` calls its messages (``e-mails``);
    #: None: its unsubscribes do not come through flowhouse's links.
    unsubscribe_page: str | None = None

    @property
    def consent_column(self) -> str:
        return f"has_{self.name}_consent"

    @property
    def opt_in_column(self) -> str:
        return f"has_{self.name}_opt_in"

    @property
    def unsubscribed_column(self) -> str:
        return f"{self.name}_unsubscribed_at"

    @property
    def suppressed_column(self) -> str:
        return f"{self.name}_suppressed_at"

    def customer_columns(self) -> tuple[str, ...]:
        """The consent, unsubscribe and suppression columns the models compute for it."""
        consent = (self.consent_column, self.opt_in_column) if self.consent else ()
        left = (self.unsubscribed_column,) if self.consent or self.opt_out else ()
        return consent + left + ((self.suppressed_column,) if self.suppression else ())


#: Every channel, in the order the flow language lists them. Output lengths: mailbox providers
#: clip far shorter e-mail bodies than 1,000,000; Twilio takes 1,600 characters of SMS or WhatsApp
#: body, Vonage 1,000 of Viber text; FCM and APNs take 4 KB payloads.
CHANNELS: dict[str, ChannelSpec] = {
    c.name: c
    for c in (
        ChannelSpec(
            "email", "Email", "e-mail", "sendgrid", "email", consent=True, suppression=True,
            paced=True, quiet_hours=True, flow_smart_sending=True, smart_sending=_DAY,
            endings=(".html.j2",), icon="M2 4h12v9H2z M2 4l6 5 6-5", opens=True, clicks=True,
            unsubscribe_page="e-mails",
        ),
        ChannelSpec(
            "sms", "Text message", "SMS", "twilio", "phone", consent=True, suppression=True,
            paced=True, quiet_hours=True, flow_smart_sending=True, smart_sending=_DAY,
            output_chars=1_600, icon="M2 3h12v8H7l-3 3v-3H2z", clicks=True,
            unsubscribe_page="text messages",
        ),
        ChannelSpec(
            "push", "Push", "push", "webhook", "customer_id", device_address="push_token",
            consent=True, paced=True, quiet_hours=True, flow_smart_sending=True,
            output_chars=4_000,
            icon="M8 2a4 4 0 0 1 4 4v3l1.5 2h-11L4 9V6a4 4 0 0 1 4-4z M6.5 13a1.5 1.5 0 0 0 3 0",
        ),
        ChannelSpec(
            "webhook", "Webhook", "webhook", "webhook", None, endings=(".json.j2", ".txt.j2"),
            icon="M2 8h10 M9 5l3 3-3 3",
        ),
        ChannelSpec(
            "onsite", "Onsite message", "onsite", "onsite", "customer_id", opt_out=True,
            paced=True, counts_for_any=False, output_chars=20_000,
            endings=(".html.j2", ".txt.j2"), icon="M2 3h12v10H2z M2 6h12 M6 9h6",
        ),
        ChannelSpec(
            "whatsapp", "WhatsApp", "WhatsApp", "twilio", "phone", consent=True,
            suppression=True, paced=True, quiet_hours=True, flow_smart_sending=True,
            smart_sending=_DAY, output_chars=1_600,
            icon="M8 2a6 6 0 1 1-3 11.2L2 14l.8-3A6 6 0 0 1 8 2z M6 6c0 2 2 4 4 4",
            unsubscribe_page="WhatsApp messages",
        ),
        ChannelSpec(
            "viber", "Viber", "Viber", "vonage", "phone", consent=True, suppression=True,
            paced=True, quiet_hours=True, flow_smart_sending=True, smart_sending=_DAY,
            output_chars=1_000, icon="M3 3h10v8H8l-3 3v-3H3z M6 5.5c.5 1.5 1.5 2.5 3 3",
            unsubscribe_page="Viber messages",
        ),
    )
}  # fmt: skip


def channels(**having: bool) -> tuple[ChannelSpec, ...]:
    """The channels whose flags are as given, in registry order: ``channels(paced=True)``."""
    return tuple(c for c in CHANNELS.values() if all(getattr(c, k) == v for k, v in having.items()))


def names(**having: bool) -> tuple[str, ...]:
    """The names of :func:`channels`."""
    return tuple(c.name for c in channels(**having))
