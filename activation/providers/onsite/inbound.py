"""Onsite engagement from the storefront (``<inbox>/onsite/*.json``, one each: ``kind`` seen or
dismissed or clicked, ``message_id``, ``customer_id``, ``received_at``, stored by ``flowhouse
receive``) as canonical events: seen is ``message_delivered`` and ``message_opened`` (the customer
had it on screen), dismissed is ``message_dismissed``, clicked (its deep link followed) is
``message_clicked``, which attributes orders (``onsite_click`` in ``attribution_window_days``)."""

from __future__ import annotations

from flowhouse.activation.providers.inbound import Inbound

NOTES = """
select path, item_no, provider, lower(json_extract_string(item, '$.kind')) as status,
       '' as subtype,
       'onsite:' || trim(json_extract_string(item, '$.message_id')) || ':'
           || lower(json_extract_string(item, '$.kind')) as provider_event_id,
       trim(json_extract_string(item, '$.message_id')) as message_id,
       trim(json_extract_string(item, '$.customer_id')) as customer_id,
       null as flow_id, null as step_id, 'onsite' as channel, null as url, null as reason,
       null as error_code,
       coalesce(try_cast(json_extract_string(item, '$.received_at') as timestamptz)
                    at time zone 'UTC', :now) as occurred_at
from _items where provider = 'onsite'
"""

INBOUND = Inbound(
    source="onsite",
    body="object",
    required=("kind", "message_id", "customer_id"),
    notes=NOTES,
    events=(
        ("seen", "", "message_delivered", None, ""),
        ("seen", "", "message_opened", None, ":opened"),
        ("dismissed", "", "message_dismissed", None, ""),
        ("clicked", "", "message_clicked", None, ""),
    ),
    item_checks=(
        (
            "lower(coalesce(json_extract_string(item, '$.kind'), ''))"
            " not in ('seen', 'dismissed', 'clicked')",
            "kind is not 'seen', 'dismissed' or 'clicked'",
        ),
    ),
)
