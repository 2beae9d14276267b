"""The marts know WhatsApp and Viber: a read (recorded as `message_opened` on the channel) credits
an order within the channel's window (`whatsapp_open`, `viber_open`: one day by default), and the
message facts count the channel's messages, deliveries and opens."""

from __future__ import annotations

from datetime import timedelta

from test_marts import T0, Store, enroll, message_id, read, send, write

from flowhouse.core.build import MARTS, build_models
from flowhouse.core.warehouse import Location, Warehouse

H = timedelta(hours=1)
NOW = T0 + timedelta(days=10)


def scenario() -> Store:
    """Four customers get the e-mail of arm a, then a chat message a day later on the step the
    flow sends SMS from; each reads it an hour later and orders after a while."""
    s = Store()
    later = T0 + timedelta(days=1)
    cases = {"wa_soon": ("whatsapp", 2 * H), "wa_late": ("whatsapp", 2 * H + timedelta(days=1)),
             "vb_soon": ("viber", 3 * H), "vb_late": ("viber", timedelta(days=3))}  # fmt: skip
    for customer, (channel, order_after) in cases.items():
        eid = enroll(s, customer, "a", holdout=False, sms=False, waiting=False)
        common = {"enrollment_id": eid, "flow_id": "f", "flow_version": "v1",
                  "customer_id": customer}  # fmt: skip
        send(s, common, "send_sms", channel, later, False)
        chat = message_id(eid, "send_sms")
        s.touch(customer, chat, "delivered", later + timedelta(seconds=30), channel)
        s.touch(customer, chat, "opened", later + H, channel)
        s.order(customer, later + order_after, 50.0)
    return s


def test_reads_on_whatsapp_and_viber_credit_orders_within_a_day(tmp_warehouse: Location) -> None:
    write(scenario(), tmp_warehouse)
    build_models(tmp_warehouse, select=[f"+{MARTS}"], now=NOW, tests=False)
    with Warehouse.open(tmp_warehouse) as wh:
        credited = {
            r["customer_id"]: (r["channel"], r["step_id"])
            for r in read(wh, "order_attribution", ["customer_id", "channel", "step_id"])
        }
        facts = wh.query(
            "select channel, count(*), count(delivered_at), count(first_opened_at) "
            "from marts.message_facts group by channel order by channel"
        )
    assert credited == {"wa_soon": ("whatsapp", "send_sms"), "vb_soon": ("viber", "send_sms")}
    assert [tuple(f) for f in facts] == [("email", 4, 4, 0), ("viber", 2, 2, 2),
                                         ("whatsapp", 2, 2, 2)]  # fmt: skip
