"""Results in plain words: number formats, A/B and holdout sentences, reasons and step labels.

Expected sentences are written out by hand from the rows given."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from flowhouse.flows.flowfile import Flow, UntilTime
from flowhouse.report import words
from flowhouse.report.labels import duration_words, step_label, until_words
from flowhouse.report.words import Row

M = "\u2212"  # the minus sign the report prints


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (lambda: words.count(1234), "1,234"),
        (lambda: words.count(None), "—"),
        (lambda: words.count(23.4), "23"),
        (lambda: words.pct(0.1234), "12.3%"),
        (lambda: words.pct(0.1, 0), "10%"),
        (lambda: words.points(0.021), "2.1 points"),
        (lambda: words.points(-0.021, signed=True), f"{M}2.1 points"),
        (lambda: words.points(0.015, signed=True), "+1.5 points"),
        (lambda: words.points(-0.0001, signed=True), "+0.0 points"),
        (lambda: words.pct(-0.0001), "0.0%"),
        (lambda: words.interval(-0.0001, 0.02), "0.0 to 2.0"),
        (lambda: words.money(1840.4), "$1,840"),
        (lambda: words.money(12.5), "$12.50"),
        (lambda: words.money(-0.5), f"{M}$0.50"),
        (lambda: words.money(4.05, "€", True), "€4.05"),
        (lambda: words.p_value(0.0004), "p < 0.001"),
        (lambda: words.p_value(0.003), "p = 0.003"),
        (lambda: words.p_value(0.01), "p = 0.01"),
        (lambda: words.p_value(0.046), "p = 0.046"),
        (lambda: words.p_value(0.41), "p = 0.41"),
        (lambda: words.interval(0.008, 0.034), "0.8–3.4"),
        (lambda: words.interval(-0.012, 0.028), f"{M}1.2 to 2.8"),
        (lambda: words.interval(310, 3370, "money"), "$310 to $3,370"),
        (lambda: words.round_people(22039.7), "22,000"),
        (lambda: words.round_people(4812), "4,800"),
        (lambda: words.round_people(37.2), "38"),
        (lambda: words.day_span(date(2026, 9, 24), date(2026, 9, 30)), "Sep 24–30, 2026"),
        (lambda: words.day_span(date(2026, 9, 28), date(2026, 10, 4)), "Sep 28 – Oct 4, 2026"),
        (lambda: words.week_span(date(2026, 9, 28), date(2026, 10, 5)), "Sep 28 – Oct 4"),
    ],
)
def test_formats(value: Callable[[], str], expected: str) -> None:
    assert value() == expected


def test_recipients_needed_matches_the_textbook_value() -> None:
    # 10% against 12%, 80% power, two-sided 5%: about 3,840 per arm (unpooled normal approximation)
    needed = words.recipients_needed(0.10, 0.12)
    assert needed is not None
    assert 3830 < needed < 3850
    assert words.recipients_needed(0.1, 0.1) is None


PLAIN = {
    "arm": "plain",
    "recipients": 1480,
    "conversion_rate": 0.102,
    "revenue_per_recipient": 4.05,
}
QUESTION = {
    "arm": "question", "recipients": 1500, "conversion_rate": 0.123, "revenue_per_recipient": 4.6,
    "conversion_rate_lift": 0.021, "conversion_rate_lift_ci_low": 0.008,
    "conversion_rate_lift_ci_high": 0.034, "conversion_rate_p_value": 0.003, "is_significant": True,
    "revenue_per_recipient_lift": 0.55, "revenue_per_recipient_lift_ci_low": -0.1,
    "revenue_per_recipient_lift_ci_high": 1.2, "revenue_per_recipient_p_value": 0.09,
}  # fmt: skip


def test_a_clear_winner() -> None:
    reading = words.variant_reading(QUESTION, PLAIN)
    assert reading.tone == "win"
    assert reading.text == (
        "question beat plain by 2.1 points (12.3% vs 10.2%), 95% CI 0.8–3.4, p = 0.003."
    )
    assert reading.notes == (
        "Revenue per recipient: $4.60 for question vs $4.05 for plain (difference $0.55, "
        f"95% CI {M}$0.10 to $1.20, p = 0.09).",
    )


def test_a_clear_loser() -> None:
    worse = {**QUESTION, "conversion_rate": 0.081, "conversion_rate_lift": -0.021,
             "conversion_rate_lift_ci_low": -0.034, "conversion_rate_lift_ci_high": -0.008}  # fmt: skip
    reading = words.variant_reading(worse, PLAIN)
    assert reading.tone == "loss"
    assert reading.text.startswith("question trailed plain by 2.1 points (8.1% vs 10.2%)")
    assert f"95% CI {M}3.4 to {M}0.8" in reading.text


def test_no_clear_difference_says_how_many_more_recipients_are_needed() -> None:
    featured = {"arm": "featured", "recipients": 1200, "conversion_rate": 0.102}
    grid = {"arm": "grid", "recipients": 1200, "conversion_rate": 0.11,
            "conversion_rate_lift": 0.008, "conversion_rate_lift_ci_low": -0.012,
            "conversion_rate_lift_ci_high": 0.028, "conversion_rate_p_value": 0.41,
            "is_significant": False}  # fmt: skip
    reading = words.variant_reading(grid, featured)
    # n = (1.96 + 0.84)^2 * (0.11 * 0.89 + 0.102 * 0.898) / 0.008^2 = 23,240; minus the 1,200 there
    assert reading.tone == "unclear"
    assert reading.text == (
        "No clear difference yet: grid converted 11.0% and featured 10.2% (difference 0.8 "
        f"points, 95% CI {M}1.2 to 2.8, p = 0.41); about 22,000 more recipients per arm would "
        "be needed."
    )
    assert reading.notes == ()


def test_a_negative_unclear_difference_keeps_its_sign() -> None:
    featured = {"arm": "a", "recipients": 500, "conversion_rate": 0.10}
    b = {"arm": "b", "recipients": 500, "conversion_rate": 0.09, "conversion_rate_lift": -0.01,
         "conversion_rate_lift_ci_low": -0.05, "conversion_rate_lift_ci_high": 0.03,
         "conversion_rate_p_value": 0.6, "is_significant": False}  # fmt: skip
    assert f"(difference {M}1.0 points" in words.variant_reading(b, featured).text


@pytest.mark.parametrize("recipients", [0, 12])
def test_too_few_recipients_to_compare(recipients: int) -> None:
    tiny = {**QUESTION, "recipients": recipients}
    reading = words.variant_reading(tiny, PLAIN)
    assert reading.tone == "few"
    assert reading.text.startswith(
        f"Too few recipients to compare question with plain yet ({recipients}"
    )


CART = {
    "treatment_enrollees": 3150, "holdout_enrollees": 350, "treatment_conversion_rate": 0.08,
    "holdout_conversion_rate": 0.065, "conversion_rate_lift": 0.015,
    "conversion_rate_lift_ci_low": 0.004, "conversion_rate_lift_ci_high": 0.026,
    "conversion_rate_p_value": 0.01, "incremental_conversions": 23.4,
    "incremental_conversions_ci_low": 5.2, "incremental_conversions_ci_high": 41.0,
    "incremental_revenue": 1840.0, "incremental_revenue_ci_low": 310.0,
    "incremental_revenue_ci_high": 3370.0, "attributed_conversions": 61,
    "attributed_revenue": 5400.5, "enrollees_window_open": 120, "is_significant": True,
}  # fmt: skip
TEN_PERCENT = words.HoldoutContext(0.1, "orders", "$")


def test_a_holdout_lift_in_words_with_last_touch_beside_it() -> None:
    reading = words.holdout_reading(CART, TEN_PERCENT)
    assert reading.tone == "win"
    assert reading.text == (
        "Treatment converted 8.0% against 6.5% for the 10% holdout: +1.5 points, ~23 incremental "
        "orders and $1,840 incremental revenue (95% CI 0.4–2.6 points; 5 to 41 orders; $310 to "
        "$3,370), p = 0.01."
    )
    assert reading.notes[0].startswith(
        "Last-touch attribution credits $5,400 (61 orders) to this flow's messages; the holdout "
        "puts its incremental revenue at $1,840. The incremental figure is the honest measure"
    )
    assert reading.notes[1] == (
        "120 enrollees are still inside the goal window, so these numbers will still move."
    )


def test_an_unclear_holdout_says_so() -> None:
    unclear = {**CART, "conversion_rate_lift_ci_low": -0.002, "conversion_rate_p_value": 0.08,
               "is_significant": False, "enrollees_window_open": 0}  # fmt: skip
    reading = words.holdout_reading(unclear, TEN_PERCENT)
    assert reading.tone == "unclear"
    assert "No clear lift yet: the difference could be chance" in reading.text
    assert len(reading.notes) == 1


def test_a_holdout_that_does_better() -> None:
    worse = {**CART, "conversion_rate_lift": -0.015, "conversion_rate_lift_ci_low": -0.026,
             "conversion_rate_lift_ci_high": -0.004}  # fmt: skip
    reading = words.holdout_reading(worse, TEN_PERCENT)
    assert reading.tone == "loss"
    assert f": {M}1.5 points," in reading.text
    assert "The holdout did better" in reading.text


def test_a_negative_incremental_effect_reads_as_fewer_orders_and_less_revenue() -> None:
    losing = {**CART, "conversion_rate_lift": -0.008, "is_significant": False,
              "incremental_conversions": -16.2, "incremental_revenue": -6166.9}  # fmt: skip
    text = words.holdout_reading(losing, TEN_PERCENT).text
    assert f"{M}0.8 points, ~16 fewer orders and $6,167 less revenue (95% CI" in text
    nearly_none = {**losing, "incremental_conversions": -0.4}
    assert (
        "~0 incremental orders and $6,167 less revenue"
        in words.holdout_reading(nearly_none, TEN_PERCENT).text
    )


@pytest.mark.parametrize(
    ("row", "start"),
    [
        (None, "No holdout enrollees yet: too few holdout enrollees to tell."),
        ({**CART, "holdout_enrollees": 0}, "No holdout enrollees yet"),
        ({**CART, "holdout_enrollees": 12, "conversion_rate_lift": None},
         "Too few holdout enrollees to tell: 12 so far"),
        ({**CART, "holdout_enrollees": 29}, "Too few holdout enrollees to tell: 29 so far"),
    ],
)  # fmt: skip
def test_tiny_holdouts_are_too_few_to_tell(row: Row | None, start: str) -> None:
    reading = words.holdout_reading(row, TEN_PERCENT)
    assert reading.tone == "few"
    assert reading.text.startswith(start)
    assert "incremental" not in reading.text


def test_too_few_still_shows_last_touch_as_an_upper_bound() -> None:
    reading = words.holdout_reading({**CART, "holdout_enrollees": 12}, TEN_PERCENT)
    assert any("upper bound" in n and "$5,400" in n for n in reading.notes)


def test_a_flow_without_a_holdout() -> None:
    reading = words.holdout_reading(None, words.HoldoutContext(0.0))
    assert reading.tone == "none"
    assert reading.text.startswith("This flow has no holdout")


@pytest.mark.parametrize(
    ("enrolled", "share", "row", "expected"),
    [
        (0, 0.1, CART, ("none", "No enrollments")),
        (100, 0.0, None, ("none", "No holdout")),
        (100, 0.1, None, ("few", "Too early")),
        (100, 0.1, {**CART, "holdout_enrollees": 5}, ("few", "Too early")),
        (100, 0.1, CART, ("win", "Lifting")),
        (100, 0.1, {**CART, "is_significant": False}, ("unclear", "No clear lift")),
        (100, 0.1, {**CART, "conversion_rate_lift": -0.01}, ("loss", "Hurting")),
    ],
)
def test_status_words(
    enrolled: int, share: float, row: Row | None, expected: tuple[str, str]
) -> None:
    assert words.status(enrolled, share, row) == expected


@pytest.mark.parametrize(
    ("sent", "failed", "expected"),
    [
        (0, 43, ("loss", "Failing")),
        (40, 43, ("loss", "Failing")),
        (43, 43, ("loss", "Failing")),
        (400, 43, ("win", "Lifting")),  # a few failures: the step boxes show them
        (400, 0, ("win", "Lifting")),
        (None, None, ("win", "Lifting")),
    ],
)
def test_a_flow_whose_messages_mostly_fail_is_failing(
    sent: int | None, failed: int | None, expected: tuple[str, str]
) -> None:
    assert words.status(100, 0.1, CART, sent, failed) == expected
    assert words.status(0, 0.1, CART, sent, failed) == ("none", "No enrollments")


def test_failure_reasons_keep_the_providers_words() -> None:
    reason = "400 personalizations.0.to.0.email: Does not contain a valid_address"
    assert words.reason_words("failed", reason) == reason
    assert words.STAGES["failed"] == "Message failed"


def test_reasons_in_words() -> None:
    assert words.reason_words("skipped", "consent") == "no marketing consent for the channel"
    assert words.reason_words("refused", "duplicate_key").startswith(
        "already enrolled for the same key"
    )
    assert words.reason_words("refused", "paused") == "the flow was paused when the trigger came"
    assert (
        words.reason_words("exited", "order_placed")
        == "placed an order (an exit event of the flow)"
    )
    assert words.reason_words("exited", "wishlist_added") == (
        "wishlist added happened (an exit event of the flow)"
    )
    assert words.goal_noun("first_purchase") == "orders"
    assert words.goal_noun("review_submitted") == "conversions"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(hours=23), "23 hours"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(days=1, hours=12), "1 day 12 hours"),
        (timedelta(days=14), "2 weeks"),
        (timedelta(minutes=90), "1 hour 30 minutes"),
    ],
)
def test_durations_in_words(value: timedelta, expected: str) -> None:
    assert duration_words(value) == expected


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ({"time": "10:00"}, "until 10:00"),
        ({"weekdays": ["sun", "sat"], "time": "10:00"}, "until Sat or Sun, 10:00"),
        ({"weekdays": ["tue", "wed", "thu"], "time": "09:30"}, "until Tue, Wed or Thu, 09:30"),
        ({"weekdays": ["mon", "tue", "wed", "thu", "fri"], "time": "10:00"}, "until a weekday, 10:00"),
        ({"date": "customer.birthday", "offset": "3d", "before": True, "time": "09:00"},
         "until 3 days before birthday, 09:00"),
        ({"date": "customer.created_at", "offset": "7d", "yearly": False, "time": "11:00"},
         "until 1 week after created at, 11:00"),
    ],
)  # fmt: skip
def test_wait_until_in_words(until: dict[str, Any], expected: str) -> None:
    assert until_words(UntilTime.model_validate(until)) == expected


@pytest.mark.parametrize(
    ("send", "kind", "title", "detail"),
    [
        ({"channel": "push", "template": "p.txt.j2", "title": "Still there?"}, "send push",
         "Push", "“Still there?”"),
        ({"channel": "onsite", "template": "b.html.j2"}, "send onsite", "Onsite message",
         "b.html.j2"),
    ],
)  # fmt: skip
def test_push_and_onsite_steps_are_labelled(
    send: dict[str, Any], kind: str, title: str, detail: str
) -> None:
    flow = Flow.model_validate(
        {"flow": "f", "name": "F", "trigger": {"event": "cart_abandoned"},
         "steps": [{"id": "s", "send": send}]}
    )  # fmt: skip
    label = step_label(flow.steps[0], flow)
    assert (label.kind, label.title, label.detail) == (kind, title, (detail,))
