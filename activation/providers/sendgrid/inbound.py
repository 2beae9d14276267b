"""SendGrid's event webhook (``<inbox>/sendgrid/*.json``, each a JSON array of events) as
canonical events: delivered, opened, clicked, bounced (``bounce``: hard, ``blocked`` and
``dropped``: soft), complained, unsubscribed. ``processed`` and ``deferred`` are not events."""

from __future__ import annotations

from flowhouse.activation.providers.inbound import Inbound

NOTES = """
select path, item_no, provider,
       lower(json_extract_string(item, '$.event')) as status,
       case when lower(json_extract_string(item, '$.event')) <> 'bounce' then ''
            when lower(coalesce(json_extract_string(item, '$.type'), '')) = 'blocked' then 'blocked'
            else 'bounce' end as subtype,
       json_extract_string(item, '$.sg_event_id') as provider_event_id,
       nullif(trim(json_extract_string(item, '$.message_id')), '') as message_id,
       nullif(trim(json_extract_string(item, '$.customer_id')), '') as customer_id,
       json_extract_string(item, '$.flow_id') as flow_id,
       json_extract_string(item, '$.step_id') as step_id,
       'email' as channel,
       json_extract_string(item, '$.url') as url,
       json_extract_string(item, '$.reason') as reason,
       cast(null as varchar) as error_code,
       make_timestamp(cast(cast(json_extract_string(item, '$.timestamp') as double) * 1000000
                           as bigint)) as occurred_at
from _items where provider = 'sendgrid'
"""

INBOUND = Inbound(
    source="sendgrid",
    body="array",
    required=("event", "timestamp", "sg_event_id"),
    notes=NOTES,
    events=(
        ("delivered", "", "message_delivered", None, ""),
        ("open", "", "message_opened", None, ""),
        ("click", "", "message_clicked", None, ""),
        ("bounce", "bounce", "message_bounced", "hard", ""),
        ("bounce", "blocked", "message_bounced", "soft", ""),
        ("dropped", "", "message_bounced", "soft", ""),
        ("spamreport", "", "message_complained", None, ""),
        ("unsubscribe", "", "unsubscribed", None, ""),
        ("group_unsubscribe", "", "unsubscribed", None, ""),
    ),
    item_checks=(
        (
            "try_cast(json_extract_string(item, '$.timestamp') as double) is null",
            "timestamp is not a number",
        ),
    ),
)
