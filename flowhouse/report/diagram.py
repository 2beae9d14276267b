"""One flow as a canvas: its steps as boxes from the trigger down to the end, with counts.

:func:`layout` turns a flow (its deployed spec) and its numbers (``marts.flow_steps`` and
``marts.flow_branches`` rows) into boxes and edges with coordinates; :func:`svg` draws them. The
paths of a branch, split or ``wait_for`` stand side by side and re-join at the step after it (the
engine continues nested steps there, see DESIGN.md "Nested steps"). Widths are computed from the
leaves up, so a path is as wide as its widest nested step and no two boxes overlap.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from html import escape
from typing import Any, Literal

from flowhouse.flows.channels import CHANNELS
from flowhouse.flows.flowfile import Flow, Step
from flowhouse.report.labels import Label, paths, step_label, trigger_label
from flowhouse.report.words import count, money, pct

Row = Mapping[str, Any]
Point = tuple[float, float]
#: One statistic: (value, what it counts), drawn as a bold number and a word.
Stat = tuple[str, str]
Stats = tuple[tuple[Stat, ...], ...]
Role = Literal["node", "path", "terminal"]

NODE_W = 236
PATH_W = NODE_W - 20
PAD_X = 12
PAD_Y = 10
ICON = 22
TITLE_H = 17
LINE_H = 15
STATS_GAP = 6
V_GAP = 46
COL_GAP = 26
JOIN_GAP = 24
MARGIN = 18
#: Average advance of a 12 px sans-serif character, and of a bold title's: text is wrapped to
#: these so it stays inside its box (path titles are 12 px).
CHAR_W = 6.5
_TITLE_CHAR_W = {"node": 7.6, "terminal": 7.6, "path": 7.0}


@dataclass(frozen=True)
class FlowNumbers:
    """The numbers a diagram shows: rows of marts.flow_steps by step id, of marts.flow_branches
    by (step id, path), and the flow's totals from marts.flow_daily."""

    steps: Mapping[str, Row] = field(default_factory=dict)
    paths: Mapping[tuple[str, str], Row] = field(default_factory=dict)
    totals: Row = field(default_factory=dict)


@dataclass(frozen=True)
class Card:
    """A box's content before it is placed."""

    role: Role
    kind: str
    title: tuple[str, ...]
    lines: tuple[str, ...] = ()
    stats: Stats = ()
    step_id: str | None = None
    tooltip: str = ""
    #: At least this tall: the path labels of one step share the height of the tallest.
    min_height: float = 0

    @property
    def width(self) -> float:
        return PATH_W if self.role == "path" else NODE_W

    @property
    def height(self) -> float:
        text = len(self.title) * TITLE_H + len(self.lines) * LINE_H
        stats = STATS_GAP + len(self.stats) * LINE_H if self.stats else 0
        return max(2 * PAD_Y + text + stats, self.min_height)


@dataclass(frozen=True)
class Box:
    card: Card
    x: float
    y: float

    @property
    def w(self) -> float:
        return self.card.width

    @property
    def h(self) -> float:
        return self.card.height


@dataclass(frozen=True)
class Edge:
    points: tuple[Point, ...]
    label: str | None = None
    arrow: bool = True


@dataclass
class Diagram:
    flow_id: str
    width: float = 0
    height: float = 0
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    joins: list[Point] = field(default_factory=list)

    @property
    def nodes(self) -> list[Box]:
        """The boxes of steps (not the trigger, the end or path labels)."""
        return [b for b in self.boxes if b.card.role == "node"]


# -- content -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    card: Card
    items: tuple[_Item, ...]


@dataclass(frozen=True)
class _Item:
    card: Card
    columns: tuple[_Column, ...]
    reached: str | None


def wrap(text: str, width: float, max_lines: int, char_w: float = CHAR_W) -> tuple[str, ...]:
    """`text` in lines that fit `width` pixels; past `max_lines` the last one ends with ``…``."""
    chars = max(int(width / char_w), 4)
    lines = textwrap.wrap(text, chars, break_long_words=True) or [""]
    if len(lines) <= max_lines:
        return tuple(lines)
    last = lines[max_lines - 1]
    return (*lines[: max_lines - 1], last[: chars - 1].rstrip() + "…")


def _text_x(role: Role) -> float:
    """Where titles and details start: right of the icon, except in path labels (no icon)."""
    return PAD_X if role == "path" else PAD_X + ICON + 8


def _card(role: Role, label: Label, stats: Stats, step_id: str | None) -> Card:
    width = PATH_W if role == "path" else NODE_W
    text_width = width - _text_x(role) - PAD_X
    title = wrap(label.title, text_width, 3 if role == "path" else 2, _TITLE_CHAR_W[role])
    lines = tuple(x for d in label.detail for x in wrap(d, text_width, 2))[:3]
    tooltip = " · ".join((label.title, *label.detail, *((step_id,) if step_id else ())))
    return Card(role, label.kind, title, lines, stats, step_id, tooltip)


def _items(steps: Sequence[Step], flow: Flow, numbers: FlowNumbers) -> tuple[_Item, ...]:
    return tuple(_item(s, flow, numbers) for s in steps)


def _item(step: Step, flow: Flow, numbers: FlowNumbers) -> _Item:
    row = numbers.steps.get(step.id)
    label = step_label(step, flow)
    card = _card("node", label, step_stats(label.kind, row), step.id)
    columns = [
        _Column(
            _card("path", p.label, _path_stats(numbers.paths.get((step.id, p.key))), None),
            _items(p.steps, flow, numbers),
        )
        for p in paths(step, flow)
    ]
    tallest = max((c.card.height for c in columns), default=0)
    level = tuple(replace(c, card=replace(c.card, min_height=tallest)) for c in columns)
    return _Item(card, level, count(row.get("reached")) if row else None)


def step_stats(kind: str, row: Row | None) -> Stats:
    """The lines of numbers under a step's title, from its marts.flow_steps row."""
    if row is None:
        return ((("no data", ""),),)
    first: list[Stat] = [(count(row.get("reached")), "reached")]
    if row.get("waiting_now"):
        first.append((count(row["waiting_now"]), "waiting now"))
    lines = [tuple(first)]
    if kind.startswith("send"):
        lines += _send_stats(row)
    if row.get("exited_here"):
        lines.append(((count(row["exited_here"]), "exited here"),))
    return tuple(lines)


def _send_stats(row: Row) -> list[tuple[Stat, ...]]:
    lines: list[tuple[Stat, ...]] = [((count(row.get("messages_sent")), "sent"),)]
    if row.get("open_rate") is not None:
        lines[0] += ((pct(row["open_rate"]), "open"), (pct(row.get("click_rate")), "click"))
    if row.get("messages_failed"):
        lines.insert(1, ((count(row["messages_failed"]), "failed"),))
    skipped = [(count(row[k]), w) for k, w in _SKIPS if row.get(k)]
    if skipped:
        lines.append(tuple(skipped))
    if row.get("attributed_orders"):
        orders = int(row["attributed_orders"])
        lines.append(
            (
                (money(row.get("attributed_revenue")), "from"),
                (count(orders), "order" if orders == 1 else "orders"),
            )
        )
    return lines


_SKIPS = (("messages_skipped", "skipped"), ("messages_held_out", "held out"))


def _path_stats(row: Row | None) -> Stats:
    if row is None:
        return ((("no data", ""),),)
    return (((count(row.get("enrollments")), "took this path"), (pct(row.get("share")), "")),)


# -- layout ----------------------------------------------------------------------------------------


def _seq_size(items: Sequence[_Item]) -> tuple[float, float]:
    if not items:
        return 0.0, 0.0
    sizes = [_item_size(i) for i in items]
    return max(w for w, _ in sizes), sum(h for _, h in sizes) + V_GAP * (len(sizes) - 1)


def _column_size(column: _Column) -> tuple[float, float]:
    width, height = _seq_size(column.items)
    return max(NODE_W, width), column.card.height + (V_GAP + height if column.items else 0)


def _item_size(item: _Item) -> tuple[float, float]:
    if not item.columns:
        return NODE_W, item.card.height
    sizes = [_column_size(c) for c in item.columns]
    width = sum(w for w, _ in sizes) + COL_GAP * (len(sizes) - 1)
    tallest = max(h for _, h in sizes)
    return max(NODE_W, width), item.card.height + V_GAP + tallest + JOIN_GAP


class _Canvas:
    def __init__(self, diagram: Diagram) -> None:
        self.d = diagram

    def box(self, card: Card, cx: float, y: float) -> Box:
        placed = Box(card, cx - card.width / 2, y)
        self.d.boxes.append(placed)
        return placed

    def edge(self, points: Sequence[Point], label: str | None = None, arrow: bool = True) -> None:
        self.d.edges.append(Edge(tuple(points), label, arrow))


def _place_seq(canvas: _Canvas, items: Sequence[_Item], start: Point) -> Point:
    """Place `items` one under the other below `start`; returns where the last one ends."""
    at = start
    for item in items:
        top = at[1] + V_GAP
        canvas.edge((at, (at[0], top)), item.reached)
        at = _place_item(canvas, item, at[0], top)
    return at


def _place_item(canvas: _Canvas, item: _Item, cx: float, top: float) -> Point:
    bottom = top + canvas.box(item.card, cx, top).h
    if not item.columns:
        return cx, bottom
    sizes = [_column_size(c) for c in item.columns]
    x = cx - (sum(w for w, _ in sizes) + COL_GAP * (len(sizes) - 1)) / 2
    ends = []
    for column, (width, _) in zip(item.columns, sizes, strict=True):
        ends.append(_place_column(canvas, column, (cx, bottom), x + width / 2))
        x += width + COL_GAP
    join = bottom + V_GAP + max(h for _, h in sizes) + JOIN_GAP
    for end in ends:
        canvas.edge((end, (end[0], join), (cx, join)), arrow=False)
    canvas.d.joins.append((cx, join))
    return cx, join


def _place_column(canvas: _Canvas, column: _Column, fork: Point, cx: float) -> Point:
    top = fork[1] + V_GAP
    middle = fork[1] + V_GAP / 2
    canvas.edge((fork, (fork[0], middle), (cx, middle), (cx, top)))
    label = canvas.box(column.card, cx, top)
    return _place_seq(canvas, column.items, (cx, top + label.h))


def layout(flow: Flow, numbers: FlowNumbers) -> Diagram:
    """Boxes and edges of `flow`, from the trigger down to the end."""
    items = _items(flow.steps, flow, numbers)
    width = max(NODE_W, _seq_size(items)[0]) + 2 * MARGIN
    diagram = Diagram(flow.flow, width=width)
    canvas = _Canvas(diagram)
    trigger = canvas.box(_trigger_card(flow, numbers.totals), width / 2, MARGIN)
    end_at = _place_seq(canvas, items, (width / 2, MARGIN + trigger.h))
    top = end_at[1] + V_GAP
    completed = numbers.totals.get("completed")
    canvas.edge((end_at, (end_at[0], top)), count(completed) if completed is not None else None)
    end = canvas.box(_end_card(numbers.totals), width / 2, top)
    diagram.height = end.y + end.h + MARGIN
    return diagram


def _trigger_card(flow: Flow, totals: Row) -> Card:
    stats: list[tuple[Stat, ...]] = [((count(totals.get("enrolled")), "enrolled"),)]
    if flow.holdout:
        stats[0] += ((pct(flow.holdout, 0), "held out"),)
    if totals.get("refused"):
        stats.append(((count(totals["refused"]), "not enrolled"),))
    return _card("terminal", trigger_label(flow), tuple(stats), None)


def _end_card(totals: Row) -> Card:
    stats: list[tuple[Stat, ...]] = [((count(totals.get("completed")), "completed"),)]
    if totals.get("exited"):
        stats.append(((count(totals["exited"]), "left early (exit events)"),))
    return _card("terminal", Label("end", "Flow ends"), tuple(stats), None)


# -- drawing -------------------------------------------------------------------------------------

_ICONS = {
    **{c.name: c.icon for c in CHANNELS.values()},
    "wait": "M8 2a6 6 0 1 0 0.01 0z M8 5v3.5l2.5 1.5",
    "wait_for": "M4 2h8 M4 14h8 M5 2c0 4 6 4 6 6s-6 2-6 6 M11 2c0 4-6 4-6 6s6 2 6 6",
    "branch": "M8 14V9 M8 9L3.5 3.5 M8 9l4.5-5.5 M2 3.5h3 M11 3.5h3",
    "split": "M3 13V6 M8 13V3 M13 13V8",
    "action": "M9 1.5L3.5 9H8l-1 5.5L12.5 7H8z",
    "trigger": "M5 3l8 5-8 5z",
    "end": "M4 2v12 M4 3h8l-2 3 2 3H4",
}


def _icon(kind: str) -> str:
    key = kind.split()[-1]
    shape = _ICONS.get(key, _ICONS["action"])
    return (
        f'<g class="icon" transform="translate({PAD_X},{PAD_Y - 2})">'
        f'<rect width="{ICON}" height="{ICON}" rx="6"/>'
        f'<path d="{shape}" transform="translate(3,3)"/></g>'
    )


def _stat_line(stats: tuple[Stat, ...], x: float, y: float) -> str:
    parts = []
    for i, (value, what) in enumerate(stats):
        sep = '<tspan class="sep"> · </tspan>' if i else ""
        word = f" {escape(what)}" if what else ""
        parts.append(f'{sep}<tspan class="v">{escape(value)}</tspan>{word}')
    return f'<text class="stat" x="{x}" y="{y:.1f}">{"".join(parts)}</text>'


_RADIUS = {"node": 10, "path": 8, "terminal": 14}


def _box_svg(box: Box) -> str:
    c = box.card
    classes = f"{c.role} {c.kind}"
    data = f' data-step="{escape(c.step_id)}"' if c.step_id else ""
    out = [
        f'<g class="{classes}"{data} transform="translate({box.x:.1f},{box.y:.1f})">',
        f"<title>{escape(c.tooltip)}</title>",
        f'<rect class="card" width="{box.w}" height="{box.h}" rx="{_RADIUS[c.role]}"/>',
    ]
    text_x = _text_x(c.role)
    if c.role != "path":
        out.append(_icon(c.kind))
    y = PAD_Y + 13.0
    for line in c.title:
        out.append(f'<text class="title" x="{text_x}" y="{y:.1f}">{escape(line)}</text>')
        y += TITLE_H
    for line in c.lines:
        out.append(f'<text class="detail" x="{text_x}" y="{y - 1:.1f}">{escape(line)}</text>')
        y += LINE_H
    y += STATS_GAP
    for stats in c.stats:
        out.append(_stat_line(stats, PAD_X, y - 2))
        y += LINE_H
    out.append("</g>")
    return "".join(out)


def _edge_svg(edge: Edge, marker: str) -> str:
    d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in edge.points)
    end = f' marker-end="url(#{marker})"' if edge.arrow else ""
    return f'<path class="edge" d="{d}"{end}/>'


def _label_svg(edge: Edge) -> str:
    if edge.label is None:
        return ""
    (x, y0), (_, y1) = edge.points[-2], edge.points[-1]
    y = (y0 + y1) / 2
    width = len(edge.label) * 6.6 + 14
    return (
        f'<g class="edge-label" transform="translate({x - width / 2:.1f},{y - 9:.1f})">'
        f'<rect width="{width:.1f}" height="18" rx="9"/>'
        f'<text x="{width / 2:.1f}" y="12.5">{escape(edge.label)}</text></g>'
    )


def svg(diagram: Diagram, title: str = "") -> str:
    """The diagram as an inline ``<svg>`` (styled by the page's CSS classes)."""
    marker = f"arrow-{diagram.flow_id}"
    w, h = round(diagram.width), round(diagram.height)
    parts = [
        f'<svg class="diagram" viewBox="0 0 {w} {h}" '
        f'width="{w}" height="{h}" role="img" aria-label="{escape(title or diagram.flow_id)}">',
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,1 L9,5 L0,9 z" class="arrowhead"/>'
        "</marker></defs>",
        '<g class="edges">',
        *(_edge_svg(e, marker) for e in diagram.edges),
        *(f'<circle class="join" cx="{x:.1f}" cy="{y:.1f}" r="4"/>' for x, y in diagram.joins),
        "</g>",
        *(_box_svg(b) for b in diagram.boxes),
        *(_label_svg(e) for e in diagram.edges),
        "</svg>",
    ]
    return "".join(parts)
