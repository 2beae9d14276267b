"""Twilio's status callbacks (``<inbox>/twilio/*.json``, one each: the form fields, our query and
``received_at``) as canonical events: delivered, and bounced for ``undelivered`` and ``failed``
(hard for unreachable or opted-out numbers, else soft; a STOP is also an unsubscribe from the
channel), and WhatsApp's ``read`` as an open. The channel is the callback query's ``channel``
(``whatsapp``), else ``sms``. ``queued``, ``sent`` and ``accepted`` are not events."""

from __future__ import annotations

from sqlglot import exp

from flowhouse.activation.providers.inbound import Inbound

#: Twilio error codes that mean the number cannot be reached or has opted out: a hard bounce.
HARD_SMS_ERRORS = ("30003", "30005", "30006", "21610", "21211")
#: Twilio's "the recipient replied STOP": a hard bounce and an SMS unsubscribe.
STOP_ERROR = "21610"

NOTES = """
select path, item_no, provider, status,
       case when status not in ('undelivered', 'failed') then ''
            when error_code = :stop then 'stop'
            when list_contains(:hard, error_code) then 'hard'
            else 'soft' end as subtype,
       json_extract_string(item, '$.MessageSid') || ':' || status as provider_event_id,
       trim(json_extract_string(item, '$.message_id')) as message_id,
       trim(json_extract_string(item, '$.customer_id')) as customer_id,
       null as flow_id, null as step_id,
       coalesce(lower(trim(json_extract_string(item, '$.channel'))), 'sms') as channel,
       null as url, null as reason,
       error_code,
       coalesce(try_cast(json_extract_string(item, '$.received_at') as timestamptz)
                    at time zone 'UTC', :now) as occurred_at
from (
    select *, lower(json_extract_string(item, '$.MessageStatus')) as status,
           nullif(trim(json_extract_string(item, '$.ErrorCode')), '') as error_code
    from _items where provider = 'twilio'
) as twilio
"""

INBOUND = Inbound(
    source="twilio",
    body="object",
    required=("MessageSid", "MessageStatus", "message_id", "customer_id"),
    notes=NOTES,
    events=(
        ("delivered", "", "message_delivered", None, ""),
        ("read", "", "message_opened", None, ""),
        ("undelivered", "hard", "message_bounced", "hard", ""),
        ("undelivered", "soft", "message_bounced", "soft", ""),
        ("undelivered", "stop", "message_bounced", "hard", ""),
        ("undelivered", "stop", "unsubscribed", None, ":unsubscribe"),
        ("failed", "hard", "message_bounced", "hard", ""),
        ("failed", "soft", "message_bounced", "soft", ""),
        ("failed", "stop", "message_bounced", "hard", ""),
        ("failed", "stop", "unsubscribed", None, ":unsubscribe"),
    ),
    params={
        "stop": STOP_ERROR,
        "hard": exp.Array(expressions=[exp.Literal.string(c) for c in HARD_SMS_ERRORS]),
    },
)
