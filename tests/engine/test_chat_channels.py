"""WhatsApp and Viber are channels like SMS: the phone number is their address, each has its own
opt-in (SMS consent does not count), an unsubscribe from one leaves the others, and caps, smart
sending and quiet hours apply per channel (DESIGN.md, "Send-time rules", "Skip reasons")."""

from __future__ import annotations

from harness import SMS, VIBER, WHATSAPP, Store, case_trigger, flow

SETTINGS = """
store: {name: Test, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
"""

STEPS = [
    {"id": "chat", "send": WHATSAPP},
    {"id": "viber", "send": VIBER},
    {"id": "text", "send": SMS},
]

#: customer -> (its attributes, the reason per step: chat, viber, text)
CUSTOMERS: dict[str, tuple[dict[str, object], tuple[str | None, str | None, str | None]]] = {
    "both": (
        {"has_whatsapp_consent": True, "has_whatsapp_opt_in": True,
         "has_viber_consent": True, "has_viber_opt_in": True},
        (None, None, None),
    ),
    # SMS consent alone: WhatsApp and Viber need their own opt-in
    "sms_only": ({}, ("consent", "consent", None)),
    "no_phone": (
        {"phone": None, "has_whatsapp_consent": True, "has_whatsapp_opt_in": True,
         "has_viber_consent": True, "has_viber_opt_in": True},
        ("no_address", "no_address", "no_address"),
    ),
}  # fmt: skip


def _reasons(store: Store, customer: str) -> tuple[str | None, ...]:
    found = {
        m["step_id"]: m["skip_reason"] for m in store.messages() if m["customer_id"] == customer
    }
    return tuple(found[s["id"]] for s in STEPS)


def test_address_and_consent_per_channel(store: Store) -> None:
    store.flows(flow("chat", STEPS), settings=SETTINGS)
    store.tick("2026-03-01 00:00")
    for customer, (attributes, _) in CUSTOMERS.items():
        store.customer(customer, **({"phone": "+15550001", "sms_consent": True} | attributes))
        store.event(customer, "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:05")
    assert {c: _reasons(store, c) for c in CUSTOMERS} == {
        c: reasons for c, (_, reasons) in CUSTOMERS.items()
    }
    channels = {m["step_id"]: (m["channel"], m["address"]) for m in store.messages()
                if m["customer_id"] == "both"}  # fmt: skip
    assert channels == {
        "chat": ("whatsapp", "+15550001"),
        "viber": ("viber", "+15550001"),
        "text": ("sms", "+15550001"),
    }


def test_an_unsubscribe_from_whatsapp_leaves_viber_and_sms(store: Store) -> None:
    store.flows(flow("chat", [{"id": "wait", "wait": "1h"}, *STEPS]), settings=SETTINGS)
    store.tick("2026-03-01 00:00")
    for customer in ("whatsapp", "all"):
        store.customer(customer, phone="+15550001", sms_consent=True,
                       **CUSTOMERS["both"][0])  # fmt: skip
        store.event(customer, "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    store.unsubscribe("whatsapp", "whatsapp", at="2026-03-01 10:30")
    store.unsubscribe("all", "all", at="2026-03-01 10:30")
    store.tick("2026-03-01 11:05")
    assert _reasons(store, "whatsapp") == ("unsubscribed", None, None)
    assert _reasons(store, "all") == ("unsubscribed", "unsubscribed", "unsubscribed")


def test_caps_smart_sending_and_quiet_hours_per_chat_channel(store: Store) -> None:
    settings = SETTINGS.replace("smart_sending: {}", "smart_sending: {whatsapp: 16h}") + (
        "caps:\n  - {channel: viber, limit: 1, period: 1d}\n"
        "quiet_hours:\n  viber: {start: '21:00', end: '08:00'}\n"
    )
    flows = [
        flow(f"f{i}", [{"id": "chat", "send": WHATSAPP}, {"id": "viber", "send": VIBER}],
             trigger=case_trigger(f"k{i}"))
        for i in range(2)
    ]  # fmt: skip
    store.flows(*flows, settings=settings)
    store.tick("2026-03-01 00:00")
    store.customer("c", phone="+15550001", **CUSTOMERS["both"][0])
    store.event("c", "cart_abandoned", at="2026-03-01 22:00", case="k0")
    store.event("c", "cart_abandoned", at="2026-03-01 23:00", case="k1")
    store.tick("2026-03-02 09:00")
    found = sorted(
        (m["flow_id"], m["channel"], m["status"], m["skip_reason"], f"{m['due_at']:%d %H:%M}")
        for m in store.messages()
    )
    assert found == [
        ("f0", "viber", "queued", None, "02 08:00"),  # moved out of Viber's quiet hours
        ("f0", "whatsapp", "queued", None, "01 22:00"),  # WhatsApp has none
        ("f1", "viber", "skipped", "frequency_cap", "02 08:00"),  # one Viber message a day
        ("f1", "whatsapp", "skipped", "smart_sending", "01 23:00"),  # within 16 h on WhatsApp
    ]
