"""Vonage's message status webhooks (``<inbox>/vonage/*.json``, one each: the JSON body and
``received_at``) as canonical events on the ``viber`` channel: ``delivered``, ``read`` (an open),
``undeliverable`` (a hard bounce: the number cannot get the store's Viber messages) and
``rejected`` (a soft bounce). ``submitted`` is not an event. ``client_ref`` names the message;
the customer is the outbox row's (:mod:`flowhouse.activation.engagement` looks it up)."""

from __future__ import annotations

from flowhouse.activation.providers.inbound import Inbound

NOTES = """
select path, item_no, provider, status,
       case status when 'undeliverable' then 'hard' when 'rejected' then 'soft' else '' end
           as subtype,
       json_extract_string(item, '$.message_uuid') || ':' || status as provider_event_id,
       trim(json_extract_string(item, '$.client_ref')) as message_id,
       cast(null as varchar) as customer_id,
       null as flow_id, null as step_id, 'viber' as channel, null as url,
       json_extract_string(item, '$.error.reason') as reason,
       json_extract_string(item, '$.error.code') as error_code,
       coalesce(try_cast(json_extract_string(item, '$.timestamp') as timestamptz)
                    at time zone 'UTC',
                try_cast(json_extract_string(item, '$.received_at') as timestamptz)
                    at time zone 'UTC', :now) as occurred_at
from (
    select *, lower(json_extract_string(item, '$.status')) as status
    from _items where provider = 'vonage'
) as vonage
"""

INBOUND = Inbound(
    source="vonage",
    body="object",
    required=("message_uuid", "status", "client_ref"),
    notes=NOTES,
    events=(
        ("delivered", "", "message_delivered", None, ""),
        ("read", "", "message_opened", None, ""),
        ("undeliverable", "hard", "message_bounced", "hard", ""),
        ("rejected", "soft", "message_bounced", "soft", ""),
    ),
)
