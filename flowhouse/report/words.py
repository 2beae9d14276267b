"""Results in plain words: numbers formatted for marketers, and the sentences that read a variant
test, a holdout comparison and a skip, refusal or exit reason.

Every number comes from the performance marts: these functions format and phrase them, they do not
recompute rates, intervals or p-values. The one estimate of their own is the sample-size hint of an
inconclusive test (:func:`recipients_needed`), a textbook formula documented in ``docs/report.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

Row = Mapping[str, Any]
Tone = Literal["win", "loss", "unclear", "few", "none"]

MINUS = "\u2212"
DASH = "\u2013"
#: Fewer recipients (or enrollees) than this in an arm or the holdout: too few to tell.
MIN_SAMPLE = 30
#: (z for a two-sided 5% test + z for 80% power) squared: the usual sample-size constant.
_Z2 = (1.959964 + 0.841621) ** 2


@dataclass(frozen=True)
class Reading:
    """One result in words, with a tone the page colours it by."""

    tone: Tone
    text: str
    notes: tuple[str, ...] = ()


# -- numbers -----------------------------------------------------------------------------------


def count(value: Any) -> str:
    """``1234`` -> ``1,234``; a missing value is a dash."""
    if value is None:
        return "—"
    return f"{round(float(value)):,}".replace("-", MINUS)


def decimal(value: float, digits: int = 1) -> str:
    """``-1.23`` -> ``−1.2``; a value that rounds to zero has no sign (``0.0``, not ``−0.0``)."""
    text = f"{value:.{digits}f}"
    if text.lstrip("-").strip("0.") == "":
        text = text.lstrip("-")
    return text.replace("-", MINUS)


def pct(rate: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``12.3%``."""
    if rate is None:
        return "—"
    return decimal(float(rate) * 100, digits) + "%"


def points(diff: Any, signed: bool = False) -> str:
    """A difference of rates in percentage points: ``0.021`` -> ``2.1 points``."""
    if diff is None:
        return "—"
    text = decimal(float(diff) * 100)
    if not signed:
        text = text.lstrip(MINUS)
    elif not text.startswith(MINUS):
        text = "+" + text
    return f"{text} points"


def money(value: Any, currency: str = "$", cents: bool | None = None) -> str:
    """``1840.5`` -> ``$1,841``; amounts under 100 keep their cents (``$12.34``)."""
    if value is None:
        return "—"
    amount = float(value)
    show_cents = abs(amount) < 100 if cents is None else cents
    text = f"{abs(amount):,.2f}" if show_cents else f"{abs(round(amount)):,}"
    return f"{MINUS if amount < 0 and text.strip('0.,') else ''}{currency}{text}"


def p_value(p: Any) -> str:
    """``p = 0.003``, ``p = 0.01``, ``p = 0.046``, ``p = 0.41``, ``p < 0.001``."""
    if p is None:
        return "p unknown"
    value = float(p)
    if value < 0.001:
        return "p < 0.001"
    if value < 0.1:
        return "p = " + f"{value:.3f}".rstrip("0")
    return f"p = {value:.2f}"


def interval(low: Any, high: Any, unit: str = "points", currency: str = "$") -> str:
    """A 95% interval: ``0.8–3.4`` (points), ``−1.2 to 2.8``, ``$310 to $3,370``."""
    if low is None or high is None:
        return "unknown"
    if unit == "points":
        a, b = (decimal(float(v) * 100) for v in (low, high))
    elif unit == "money":
        a, b = money(low, currency), money(high, currency)
    else:
        a, b = count(low), count(high)
    joiner = DASH if unit == "points" and float(low) >= 0 else " to "
    return f"{a}{joiner}{b}"


def round_people(value: float) -> str:
    """A rough count in two significant figures: ``4,812`` -> ``4,800``."""
    if value < 100:
        return f"{math.ceil(value):,}"
    digits = math.floor(math.log10(value)) - 1
    return f"{round(value, -digits):,.0f}"


def day_span(start: date, end: date) -> str:
    """``Sep 24–30, 2026``, ``Sep 28 – Oct 4, 2026`` (``end`` inclusive)."""
    if start.year != end.year:
        return f"{start:%b %-d, %Y} – {end:%b %-d, %Y}"
    if start == end:
        return f"{start:%b %-d, %Y}"
    if start.month == end.month:
        return f"{start:%b %-d}{DASH}{end:%-d, %Y}"
    return f"{start:%b %-d} – {end:%b %-d, %Y}"


def week_span(start: date, end_exclusive: date) -> str:
    """A week of the holdout mart, without its year: ``Sep 24–30``."""
    end = end_exclusive - timedelta(days=1)
    if start.month == end.month:
        return f"{start:%b %-d}{DASH}{end:%-d}"
    return f"{start:%b %-d} – {end:%b %-d}"


# -- variants ----------------------------------------------------------------------------------


def recipients_needed(rate_a: float, rate_b: float) -> float | None:
    """Recipients per arm to detect the difference between two conversion rates with 80% power
    at a two-sided 5% level (normal approximation); None when the rates are equal."""
    diff = rate_a - rate_b
    if diff == 0:
        return None
    return _Z2 * (rate_a * (1 - rate_a) + rate_b * (1 - rate_b)) / diff**2


def variant_reading(arm: Row, control: Row, currency: str = "$") -> Reading:
    """How `arm` did against the control arm of its split, in words."""
    name, base = str(arm["arm"]), str(control["arm"])
    n_arm, n_base = int(arm["recipients"] or 0), int(control["recipients"] or 0)
    if min(n_arm, n_base) < MIN_SAMPLE or arm.get("conversion_rate_lift") is None:
        return Reading(
            "few",
            f"Too few recipients to compare {name} with {base} yet "
            f"({count(n_arm)} and {count(n_base)}; at least {MIN_SAMPLE} each are needed).",
        )
    notes = tuple(n for n in (_revenue_note(arm, control, currency),) if n)
    if arm.get("is_significant"):
        return Reading(*_significant(arm, control, name, base), notes=notes)
    return Reading("unclear", _unclear(arm, control, name, base), notes=notes)


def _significant(arm: Row, control: Row, name: str, base: str) -> tuple[Tone, str]:
    lift = float(arm["conversion_rate_lift"])
    verb = "beat" if lift > 0 else "trailed"
    return ("win" if lift > 0 else "loss"), (
        f"{name} {verb} {base} by {points(lift)} "
        f"({pct(arm['conversion_rate'])} vs {pct(control['conversion_rate'])}), "
        f"95% CI {_lift_ci(arm)}, {p_value(arm.get('conversion_rate_p_value'))}."
    )


def _lift_ci(row: Row) -> str:
    return interval(row.get("conversion_rate_lift_ci_low"), row.get("conversion_rate_lift_ci_high"))


def _unclear(arm: Row, control: Row, name: str, base: str) -> str:
    diff = _difference(arm["conversion_rate_lift"])
    text = (
        f"No clear difference yet: {name} converted {pct(arm['conversion_rate'])} and {base} "
        f"{pct(control['conversion_rate'])} (difference {diff}, "
        f"95% CI {_lift_ci(arm)}, {p_value(arm.get('conversion_rate_p_value'))})"
    )
    return text + _more_needed(arm, control) + "."


def _difference(lift: Any) -> str:
    return (MINUS if float(lift) < 0 else "") + points(lift)


def _more_needed(arm: Row, control: Row) -> str:
    a, b = arm.get("conversion_rate"), control.get("conversion_rate")
    if a is None or b is None:
        return ""
    needed = recipients_needed(float(a), float(b))
    have = min(int(arm["recipients"] or 0), int(control["recipients"] or 0))
    if needed is None or needed <= have:
        return ""
    return f"; about {round_people(needed - have)} more recipients per arm would be needed"


def _revenue_note(arm: Row, control: Row, currency: str) -> str:
    lift = arm.get("revenue_per_recipient_lift")
    if lift is None:
        return ""
    low, high = (
        arm.get("revenue_per_recipient_lift_ci_low"),
        arm.get("revenue_per_recipient_lift_ci_high"),
    )
    return (
        f"Revenue per recipient: {money(arm.get('revenue_per_recipient'), currency, True)} for "
        f"{arm['arm']} vs {money(control.get('revenue_per_recipient'), currency, True)} for "
        f"{control['arm']} (difference {money(lift, currency, True)}, 95% CI "
        f"{interval(low, high, 'money', currency)}, "
        f"{p_value(arm.get('revenue_per_recipient_p_value'))})."
    )


# -- holdout -----------------------------------------------------------------------------------

_ORDER_EVENTS = frozenset(
    {"order_placed", "first_purchase", "repeat_purchase", "milestone_order", "high_value_order"}
)


_METRIC_WORDS = {"goal": "conversion", "open_rate": "open rate", "click_rate": "click rate"}
_UNIT_WORDS = {"goal": "enrollments", "open_rate": "messages sent", "click_rate": "messages sent"}


def rule_words(metric: str, min_sample: Any, confidence: Any) -> str:
    """An ``auto_winner`` rule in words: ``click rate, at least 500 messages sent per arm, 95%
    confidence``."""
    return (
        f"{_METRIC_WORDS.get(metric, metric)}, at least {count(min_sample)} "
        f"{_UNIT_WORDS.get(metric, 'units')} per arm, {pct(confidence, 0)} confidence"
    )


def winner_reading(winner: Row) -> Reading:
    """What the automatic decision of a split was, when, and on what figures."""
    metric = str(winner["metric"])
    figures = winner.get("figures") or "[]"
    arms = json.loads(figures) if isinstance(figures, str) else figures
    each = "; ".join(
        f"{a['arm']} {pct(a['rate'])} of {count(a['units'])}" for a in arms if a.get("units")
    )
    decided = winner["decided_at"]
    when = f"{decided:%Y-%m-%d %H:%M} UTC" if hasattr(decided, "strftime") else str(decided)
    text = (
        f"Winner: {winner['winner']}, decided automatically on {when} on "
        f"{_METRIC_WORDS.get(metric, metric)} ({each}; the winner ahead of every other arm, "
        f"{p_value(winner['p_value'])}). Rule: "
        f"{rule_words(metric, winner['min_sample'], winner['confidence'])}. New entrants go to "
        f"{winner['winner']} since then (a holdout arm keeps its share); earlier enrollments "
        "keep their arm."
    )
    return Reading("win", text)


def goal_noun(event: str | None) -> str:
    """What a conversion is called: ``orders`` for order goals, ``conversions`` otherwise."""
    return "orders" if event in _ORDER_EVENTS else "conversions"


@dataclass(frozen=True)
class HoldoutContext:
    """What the sentences need besides the mart row: the flow's holdout share and goal."""

    share: float
    noun: str = "orders"
    currency: str = "$"


def holdout_reading(row: Row | None, ctx: HoldoutContext) -> Reading:
    """Treatment against holdout over the whole period, with last-touch revenue beside it."""
    if ctx.share <= 0:
        return Reading(
            "none",
            "This flow has no holdout, so what it adds beyond orders that would have happened "
            "anyway cannot be measured.",
            (_attribution_only(row, ctx),) if row else (),
        )
    if row is None or not row.get("holdout_enrollees"):
        return Reading("few", "No holdout enrollees yet: too few holdout enrollees to tell.")
    notes = tuple(n for n in (_attribution(row, ctx), _window_open(row)) if n)
    if _too_few(row):
        return Reading("few", _few_text(row), notes)
    return Reading(_tone(row), _lift_text(row, ctx) + _verdict(row, ctx), notes)


def _too_few(row: Row) -> bool:
    small = min(int(row.get("holdout_enrollees") or 0), int(row.get("treatment_enrollees") or 0))
    return small < MIN_SAMPLE or row.get("conversion_rate_lift") is None


def _few_text(row: Row) -> str:
    return (
        f"Too few holdout enrollees to tell: {count(row.get('holdout_enrollees'))} so far "
        f"(at least {MIN_SAMPLE} are needed). Treatment converted "
        f"{pct(row.get('treatment_conversion_rate'))} of {count(row.get('treatment_enrollees'))}, "
        f"the holdout {pct(row.get('holdout_conversion_rate'))}."
    )


def _tone(row: Row) -> Tone:
    if not row.get("is_significant"):
        return "unclear"
    return "win" if float(row["conversion_rate_lift"]) > 0 else "loss"


def _lift_text(row: Row, ctx: HoldoutContext) -> str:
    ci_orders = interval(
        row.get("incremental_conversions_ci_low"), row.get("incremental_conversions_ci_high"), "n"
    )
    ci_revenue = interval(
        row.get("incremental_revenue_ci_low"),
        row.get("incremental_revenue_ci_high"),
        "money",
        ctx.currency,
    )
    return (
        f"Treatment converted {pct(row.get('treatment_conversion_rate'))} against "
        f"{pct(row.get('holdout_conversion_rate'))} for the {pct(ctx.share, 0)} holdout: "
        f"{points(row['conversion_rate_lift'], signed=True)}, {_incremental(row, ctx)} "
        f"(95% CI {_lift_ci(row)} points; {ci_orders} {ctx.noun}; {ci_revenue}), "
        f"{p_value(row.get('conversion_rate_p_value'))}."
    )


def _incremental(row: Row, ctx: HoldoutContext) -> str:
    """``~23 incremental orders and $1,840 incremental revenue``; a loss reads ``~16 fewer orders
    and $6,167 less revenue``."""
    orders = float(row.get("incremental_conversions") or 0)
    revenue = float(row.get("incremental_revenue") or 0)
    fewer = round(orders) < 0
    said_orders = f"~{count(abs(orders))} {'fewer' if fewer else 'incremental'} {ctx.noun}"
    amount = money(abs(revenue), ctx.currency)
    less = revenue <= -0.005
    said_revenue = f"{amount} less revenue" if less else f"{amount} incremental revenue"
    return f"{said_orders} and {said_revenue}"


def _verdict(row: Row, ctx: HoldoutContext) -> str:
    tone = _tone(row)
    if tone == "win":
        return ""
    if tone == "loss":
        return f" The holdout did better: the flow may be costing {ctx.noun}."
    return (
        " No clear lift yet: the difference could be chance, so the flow may not be adding "
        f"{ctx.noun} beyond those that would have happened anyway."
    )


def _attribution(row: Row, ctx: HoldoutContext) -> str:
    attributed = row.get("attributed_revenue")
    if attributed is None:
        return ""
    if _too_few(row):
        return _attribution_only(row, ctx)
    return (
        f"Last-touch attribution credits {money(attributed, ctx.currency)} "
        f"({count(row.get('attributed_conversions'))} {ctx.noun}) to this flow's messages; "
        f"the holdout puts its incremental revenue at "
        f"{money(row.get('incremental_revenue'), ctx.currency)}. The incremental figure is the "
        f"honest measure: last-touch also credits {ctx.noun} customers would have placed anyway."
    )


def _attribution_only(row: Row, ctx: HoldoutContext) -> str:
    return (
        f"Last-touch attribution credits {money(row.get('attributed_revenue'), ctx.currency)} to "
        "this flow's messages, an upper bound: it also counts "
        f"{ctx.noun} that would have happened without them."
    )


def _window_open(row: Row) -> str:
    n = int(row.get("enrollees_window_open") or 0)
    if n <= 0:
        return ""
    who = "enrollee is" if n == 1 else "enrollees are"
    return f"{count(n)} {who} still inside the goal window, so these numbers will still move."


def week_word(row: Row) -> tuple[Tone, str]:
    """A short reading of one week's holdout comparison, for the weekly table."""
    if not row.get("holdout_enrollees") or _too_few(row):
        return "few", "too few"
    tone = _tone(row)
    return tone, {"win": "lift", "loss": "holdout ahead"}.get(tone, "unclear")


# -- reasons -----------------------------------------------------------------------------------

STAGES = {
    "refused": "Not enrolled",
    "skipped": "Message skipped",
    "exited": "Left the flow early",
    "failed": "Message failed",
}

_REASONS: dict[str, str] = {
    # refused triggers
    "paused": "the flow was paused when the trigger came",
    "audience": "not in the flow's audience when the trigger happened",
    "reentry": "entered this flow too recently (re-entry rule)",
    "concurrency": "already walking this flow (no second enrollment at once)",
    "before_live": "the trigger happened before the flow went live",
    "duplicate_key": "already enrolled for the same key (such as the same cart or order)",
    # skipped messages
    "no_address": "no e-mail address or phone number on file",
    "consent": "no marketing consent for the channel",
    "unsubscribed": "unsubscribed from the channel",
    "suppressed": "suppressed: bounced or complained, or the flow's suppression rule matched",
    "stale": "too late: due longer ago than the flow's maximum lateness",
    "frequency_cap": "would have gone over a frequency cap",
    "smart_sending": "got another marketing message on the channel very recently",
    "quiet_hours": "inside quiet hours with no allowed time to move to",
    "discount_active": "already holds an unused discount",
    "coupon_pool_empty": "the coupon pool ran out of codes",
    # exits
    "filter": "no longer matched the flow filter before a send",
    "step_removed": "their step was removed when the flow was edited",
    "no_date": "no date to wait for (such as a missing birthday)",
}

_EVENTS: dict[str, str] = {
    "order_placed": "placed an order",
    "added_to_cart": "added something to the cart",
    "tier_changed": "changed loyalty tier",
    "support_ticket_opened": "opened a support ticket",
    "order_refunded": "got a refund",
    "payment_succeeded": "paid successfully",
    "unsubscribed": "unsubscribed",
}


def reason_words(stage: str, token: str) -> str:
    """A reason token explained: ``consent`` -> ``no marketing consent for the channel``."""
    if token in _REASONS:
        return _REASONS[token]
    if stage == "failed":
        return token  # the provider's or the renderer's own words
    if stage == "exited":
        happened = _EVENTS.get(token, token.replace("_", " ") + " happened")
        return f"{happened} (an exit event of the flow)"
    return token.replace("_", " ")


def status(
    enrolled: Any, holdout_share: float, holdout: Row | None, sent: Any = 0, failed: Any = 0
) -> tuple[Tone, str]:
    """One word for the overview: is the flow adding orders, by its holdout? A flow whose
    messages fail at least as often as they go out is ``Failing``, whatever its holdout says."""
    if not enrolled:
        return "none", "No enrollments"
    if failed and int(failed) >= int(sent or 0):
        return "loss", "Failing"
    if holdout_share <= 0:
        return "none", "No holdout"
    if holdout is None or not holdout.get("holdout_enrollees") or _too_few(holdout):
        return "few", "Too early"
    tone = _tone(holdout)
    return tone, {"win": "Lifting", "loss": "Hurting"}.get(tone, "No clear lift")


def measured(holdout: Row | None) -> bool:
    """Whether a holdout comparison has enough enrollees on both sides to read."""
    return holdout is not None and bool(holdout.get("holdout_enrollees")) and not _too_few(holdout)
