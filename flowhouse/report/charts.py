"""Small SVG charts of a flow over time (one row of marts.flow_daily per day): bars, stacked bars
or lines, with a labelled value axis and day axis, drawn as small multiples on the page."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any, Literal

from flowhouse.report.words import count, money

Row = Mapping[str, Any]
Style = Literal["bars", "stacked", "lines"]

WIDTH = 320
HEIGHT = 176
LEFT = 46
RIGHT = 12
TOP = 12
BOTTOM = 38


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float, ...]
    css: str


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    days: tuple[date, ...]
    series: tuple[Series, ...]
    style: Style = "bars"
    is_money: bool = False


def _values(daily: Sequence[Row], column: str) -> tuple[float, ...]:
    return tuple(float(r.get(column) or 0) for r in daily)


def flow_charts(daily: Sequence[Row]) -> list[Chart]:
    """The small multiples of one flow: enrolled, messages, conversions and revenue per day."""
    if not daily:
        return []
    days = tuple(r["day"] for r in daily)
    return [
        Chart("Enrolled per day", "enrollees", days, _enrolled(daily), "stacked"),
        Chart("Messages per day", "messages", days, _messages(daily), "lines"),
        Chart(
            "Conversions per day",
            "orders",
            days,
            (Series("Orders (last touch)", _values(daily, "conversions"), "s-conversions"),),
        ),
        Chart(
            "Attributed revenue per day",
            "revenue",
            days,
            (Series("Revenue (last touch)", _values(daily, "attributed_revenue"), "s-revenue"),),
            is_money=True,
        ),
    ]


def _enrolled(daily: Sequence[Row]) -> tuple[Series, ...]:
    if all(r.get("enrolled_treatment") is None for r in daily):
        return (Series("Enrolled", _values(daily, "enrolled"), "s-treatment"),)
    return (
        Series("Treatment", _values(daily, "enrolled_treatment"), "s-treatment"),
        Series("Holdout", _values(daily, "enrolled_holdout"), "s-holdout"),
    )


def _messages(daily: Sequence[Row]) -> tuple[Series, ...]:
    return (
        Series("Sent", _values(daily, "messages_sent"), "s-sent"),
        Series("Opened", _values(daily, "messages_opened"), "s-opened"),
        Series("Clicked", _values(daily, "messages_clicked"), "s-clicked"),
    )


# -- axes ------------------------------------------------------------------------------------------


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value - 1e-9)


def _tick(value: float, is_money: bool, currency: str) -> str:
    if value >= 10_000:
        text = f"{value / 1000:.0f}k"
    elif value >= 1000:
        text = f"{value / 1000:.1f}k".replace(".0k", "k")
    else:
        text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return f"{currency}{text}" if is_money else text


def _top(chart: Chart) -> float:
    if chart.style == "stacked":
        totals = [sum(s.values[i] for s in chart.series) for i in range(len(chart.days))]
        return nice_max(max(totals, default=0))
    return nice_max(max((v for s in chart.series for v in s.values), default=0))


# -- drawing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    top: float
    n: int

    @property
    def plot_w(self) -> float:
        return WIDTH - LEFT - RIGHT

    @property
    def plot_h(self) -> float:
        return HEIGHT - TOP - BOTTOM

    @property
    def band(self) -> float:
        return self.plot_w / max(self.n, 1)

    def x(self, i: int) -> float:
        return LEFT + self.band * (i + 0.5)

    def y(self, value: float) -> float:
        return TOP + self.plot_h * (1 - value / self.top)


def _axes(chart: Chart, f: _Frame, currency: str) -> list[str]:
    out = []
    for value in (0.0, f.top / 2, f.top):
        y = f.y(value)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        label = escape(_tick(value, chart.is_money, currency))
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    for i in sorted({0, (f.n - 1) // 2, f.n - 1}):
        anchor = "start" if i == 0 and f.n > 1 else "end" if i == f.n - 1 and f.n > 1 else "middle"
        x = LEFT if anchor == "start" else WIDTH - RIGHT if anchor == "end" else f.x(i)
        day = f"{chart.days[i]:%b %-d}"
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="{anchor}">{day}</text>'
        )
    out.append(
        f'<text class="axis-title" x="{LEFT + f.plot_w / 2:.1f}" y="{HEIGHT - 4}" '
        'text-anchor="middle">day (UTC)</text>'
        f'<text class="axis-title" transform="translate(11,{TOP + f.plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(chart.unit)}</text>'
    )
    return out


def _fmt(chart: Chart, value: float, currency: str) -> str:
    return money(value, currency) if chart.is_money else count(value)


def _bars(chart: Chart, f: _Frame, currency: str) -> list[str]:
    out = []
    width = max(f.band * 0.68, 1.0)
    for i, day in enumerate(chart.days):
        base = 0.0
        for s in chart.series:
            value = s.values[i]
            y0, y1 = f.y(base), f.y(base + value)
            tip = f"{day:%b %-d}: {_fmt(chart, value, currency)} {s.name.lower()}"
            out.append(
                f'<rect class="bar {s.css}" x="{f.x(i) - width / 2:.1f}" y="{y1:.1f}" '
                f'width="{width:.1f}" height="{max(y0 - y1, 0):.1f}"><title>{escape(tip)}</title>'
                "</rect>"
            )
            base += value if chart.style == "stacked" else 0
    return out


def _lines(chart: Chart, f: _Frame, currency: str) -> list[str]:
    out = []
    for s in chart.series:
        points = " ".join(f"{f.x(i):.1f},{f.y(v):.1f}" for i, v in enumerate(s.values))
        out.append(f'<polyline class="line {s.css}" points="{points}"/>')
        if f.n > 20:
            continue
        for i, v in enumerate(s.values):
            tip = f"{chart.days[i]:%b %-d}: {_fmt(chart, v, currency)} {s.name.lower()}"
            out.append(
                f'<circle class="dot {s.css}" cx="{f.x(i):.1f}" cy="{f.y(v):.1f}" r="2.6">'
                f"<title>{escape(tip)}</title></circle>"
            )
    return out


def svg(chart: Chart, currency: str = "$") -> str:
    """One chart as an inline ``<svg>``."""
    frame = _Frame(_top(chart), len(chart.days))
    marks = _lines if chart.style == "lines" else _bars
    return "".join(
        [
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img" aria-label="{escape(chart.title)}">',
            *_axes(chart, frame, currency),
            *marks(chart, frame, currency),
            f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{frame.y(0):.1f}" '
            f'y2="{frame.y(0):.1f}"/>',
            "</svg>",
        ]
    )
