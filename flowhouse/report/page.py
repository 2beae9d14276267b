"""The report page: what the template shows, built from :class:`~flowhouse.report.data.ReportData`,
and the page rendered from ``templates/report.html.j2`` (self-contained: inline CSS, SVG and a
little script that only measures what was drawn)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from flowhouse.flows.compile import splits
from flowhouse.report import charts, diagram, words
from flowhouse.report.data import FlowData, ReportData, sort_flows
from flowhouse.report.labels import duration_words
from flowhouse.report.words import count, money, pct, points

Row = Mapping[str, Any]
TEMPLATES = Path(__file__).parent / "templates"


def render_page(data: ReportData, currency: str = "$") -> str:
    """The whole report as one HTML document."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(page=context(data, currency))


def context(data: ReportData, currency: str = "$") -> dict[str, Any]:
    flows = sort_flows(data.flows)
    window = data.window
    return {
        "title": "Flow performance",
        "generated_at": f"{data.generated_at:%b %-d, %Y %H:%M} UTC",
        "window": words.day_span(*window) if window else "no activity yet",
        "kpis": _overall_kpis(data.totals, currency, len(flows)),
        "overview": [_overview_row(f, currency) for f in flows],
        "flows": [_flow(f, currency) for f in flows],
        "missing": [f"marts.{name}" for name in data.missing],
    }


def anchor(flow_id: str) -> str:
    return f"flow-{flow_id}"


# -- overview --------------------------------------------------------------------------------------


def _overall_kpis(totals: Row, currency: str, flows: int) -> list[dict[str, str]]:
    return [
        _kpi("Live flows", count(flows), ""),
        _kpi("Enrolled", count(totals.get("enrolled")), f"{count(totals.get('refused'))} refused"),
        _kpi("Messages sent", count(totals.get("messages_sent")), _delivered(totals)),
        _kpi("Orders", count(totals.get("conversions")), "attributed, last touch"),
        _kpi("Attributed revenue", money(totals.get("attributed_revenue"), currency), "last touch"),
        _kpi(
            "Revenue per recipient",
            money(totals.get("revenue_per_recipient"), currency, True),
            f"{count(totals.get('recipients'))} recipients",
        ),
    ]


def _kpi(label: str, value: str, sub: str) -> dict[str, str]:
    return {"label": label, "value": value, "sub": sub}


def _delivered(totals: Row) -> str:
    return f"{count(totals.get('messages_delivered'))} delivered"


def _overview_row(flow: FlowData, currency: str) -> dict[str, Any]:
    t, h = flow.totals, flow.holdout_all
    tone, word = words.status(
        t.get("enrolled"), flow.info.holdout, h, t.get("messages_sent"), t.get("messages_failed")
    )
    measured = flow.info.holdout > 0 and words.measured(h)
    return {
        "anchor": anchor(flow.info.flow_id),
        "name": flow.info.name,
        "flow_id": flow.info.flow_id,
        "tone": tone,
        "status": word,
        "enrolled": count(t.get("enrolled")),
        "sent": count(t.get("messages_sent")),
        "conversions": count(t.get("conversions")),
        "revenue": money(t.get("attributed_revenue"), currency),
        "lift": points(h["conversion_rate_lift"], signed=True) if measured and h else "—",
        "lift_ci": _points_ci(h) if measured and h else "",
        "incremental": money(h.get("incremental_revenue"), currency) if measured and h else "—",
        "incremental_ci": _revenue_ci(h, currency) if measured and h else "",
    }


def _revenue_ci(row: Row, currency: str) -> str:
    low, high = row.get("incremental_revenue_ci_low"), row.get("incremental_revenue_ci_high")
    return f"95% CI {words.interval(low, high, 'money', currency)}"


def _points_ci(row: Row) -> str:
    low, high = row.get("conversion_rate_lift_ci_low"), row.get("conversion_rate_lift_ci_high")
    return f"95% CI {words.interval(low, high)}"


# -- one flow --------------------------------------------------------------------------------------


def _flow(flow: FlowData, currency: str) -> dict[str, Any]:
    info, spec = flow.info, flow.info.spec
    t = flow.totals
    tone, word = words.status(
        t.get("enrolled"), info.holdout, flow.holdout_all, t.get("messages_sent"),
        t.get("messages_failed"),
    )  # fmt: skip
    return {
        "anchor": anchor(info.flow_id),
        "flow_id": info.flow_id,
        "name": info.name,
        "description": (spec.description or "").strip() if spec else "",
        "tone": tone,
        "status": word,
        "meta": _meta(flow),
        "kpis": _flow_kpis(flow.totals, currency),
        "diagram": _diagram(flow),
        "problem": info.spec_problem,
        "charts": [_chart(c, currency) for c in charts.flow_charts(flow.daily)],
        "holdout": _holdout(flow, currency),
        "variants": _variants(flow, currency),
        "reasons": _reasons(flow.reasons),
    }


def _meta(flow: FlowData) -> list[tuple[str, str]]:
    info, spec = flow.info, flow.info.spec
    out = []
    if spec is not None:
        trigger = spec.trigger.event + (
            f" where {spec.trigger.where}" if spec.trigger.where else ""
        )
        goal = f"{spec.goal.event} within {duration_words(spec.goal.within)}"
        out += [("Trigger", trigger), ("Goal", goal)]
    out.append(("Holdout", pct(info.holdout, 0) if info.holdout else "none"))
    if info.transactional:
        out.append(("Kind", "transactional"))
    if info.went_live_at is not None:
        out.append(("Live since", f"{info.went_live_at:%b %-d, %Y}"))
    out.append(("Version", info.version))
    return out


def _flow_kpis(t: Row, currency: str) -> list[dict[str, str]]:
    return [
        _kpi("Enrolled", count(t.get("enrolled")), f"{count(t.get('enrolled_holdout'))} held out"),
        _kpi("Messages sent", count(t.get("messages_sent")), _delivered(t)),
        _kpi(
            "Conversions",
            count(t.get("conversions")),
            f"orders, last touch · {count(t.get('goal_conversions'))} reached the goal",
        ),
        _kpi("Attributed revenue", money(t.get("attributed_revenue"), currency), "last touch"),
        _kpi(
            "Revenue per recipient",
            money(t.get("revenue_per_recipient"), currency, True),
            f"{count(t.get('recipients'))} recipients",
        ),
    ]


def _diagram(flow: FlowData) -> Markup | None:
    spec = flow.info.spec
    if spec is None:
        return None
    numbers = diagram.FlowNumbers(flow.steps, flow.paths, flow.totals)
    drawn = diagram.layout(spec, numbers)
    return Markup(diagram.svg(drawn, f"Diagram of {flow.info.name}"))


def _chart(chart: charts.Chart, currency: str) -> dict[str, Any]:
    return {
        "title": chart.title,
        "legend": [(s.name, s.css) for s in chart.series],
        "svg": Markup(charts.svg(chart, currency)),
    }


# -- results in words ------------------------------------------------------------------------------


def _holdout(flow: FlowData, currency: str) -> dict[str, Any]:
    info, row = flow.info, flow.holdout_all
    noun = words.goal_noun(info.goal_event)
    reading = words.holdout_reading(row, words.HoldoutContext(info.holdout, noun, currency))
    return {
        "reading": reading,
        "tiles": _revenue_tiles(row, flow.totals, currency) if info.holdout else [],
        "rates": _rates(row) if row is not None and words.measured(row) else None,
        "weeks": [_week(w) for w in flow.holdout_weeks],
    }


def _revenue_tiles(row: Row | None, totals: Row, currency: str) -> list[dict[str, str]]:
    attributed = row.get("attributed_revenue") if row else totals.get("attributed_revenue")
    measured = words.measured(row)
    return [
        _kpi("Last-touch revenue", money(attributed, currency), "credited to the messages"),
        _kpi(
            "Incremental revenue",
            money(row.get("incremental_revenue"), currency) if measured and row else "—",
            (_revenue_ci(row, currency) + " · " if measured and row else "")
            + "treatment vs holdout, the honest measure",
        ),
    ]


def _rates(row: Row) -> list[dict[str, Any]]:
    t, h = row.get("treatment_conversion_rate"), row.get("holdout_conversion_rate")
    top = max(float(t or 0), float(h or 0)) or 1.0
    return [
        _rate("Treatment", t, row.get("treatment_enrollees"), top),
        _rate("Holdout", h, row.get("holdout_enrollees"), top),
    ]


def _rate(label: str, rate: Any, n: Any, top: float) -> dict[str, Any]:
    width = 0.0 if rate is None else float(rate) / top * 100
    return {"label": label, "rate": pct(rate), "n": count(n), "width": f"{width:.1f}"}


def _week(row: Row) -> dict[str, Any]:
    tone, word = words.week_word(row)
    return {
        "span": words.week_span(row["period_start"], row["period_end"]),
        "treatment": f"{pct(row.get('treatment_conversion_rate'))} of "
        f"{count(row.get('treatment_enrollees'))}",
        "holdout": f"{pct(row.get('holdout_conversion_rate'))} of "
        f"{count(row.get('holdout_enrollees'))}",
        "lift": points(row.get("conversion_rate_lift"), signed=True),
        "ci": _week_ci(row),
        "tone": tone,
        "word": word,
    }


def _week_ci(row: Row) -> str:
    low, high = row.get("conversion_rate_lift_ci_low"), row.get("conversion_rate_lift_ci_high")
    if low is None or high is None:
        return ""
    return f"CI {words.interval(low, high)} · {words.p_value(row.get('conversion_rate_p_value'))}"


def _variants(flow: FlowData, currency: str) -> list[dict[str, Any]]:
    """One section per split with results in the marts, an automatic decision or a rule."""
    rules = {
        step_id: split.auto_winner
        for step_id, split in (splits(flow.info.spec) if flow.info.spec else {}).items()
        if split.auto_winner is not None
    }
    steps = list(dict.fromkeys([*flow.variants, *flow.winners, *rules]))
    out = []
    for step_id in steps:
        section = _variant(step_id, flow.variants.get(step_id, []), currency)
        winner, rule = flow.winners.get(step_id), rules.get(step_id)
        if winner is not None:
            section["decision"] = words.winner_reading(winner)
        elif rule is not None:
            section["decision"] = words.Reading(
                "none",
                "Automatic winner: not decided yet (rule: "
                f"{words.rule_words(rule.metric, rule.min_sample, rule.confidence)}).",
            )
        out.append(section)
    return out


def _variant(step_id: str, arms: Sequence[Row], currency: str) -> dict[str, Any]:
    control = next((a for a in arms if a.get("is_control")), arms[0] if arms else None)
    others = [a for a in arms if a is not control]
    return {
        "step_id": step_id,
        "title": " vs ".join(str(a["arm"]) for a in arms) or "automatic winner",
        "arms": [_arm(a, a is control, currency) for a in arms],
        "readings": [words.variant_reading(a, control, currency) for a in others if control],
        "decision": None,
    }


def _arm(arm: Row, is_control: bool, currency: str) -> dict[str, Any]:
    lift = arm.get("conversion_rate_lift")
    return {
        "name": arm["arm"],
        "control": is_control,
        "recipients": count(arm.get("recipients")),
        "conversions": count(arm.get("conversions")),
        "rate": pct(arm.get("conversion_rate")),
        "rpr": money(arm.get("revenue_per_recipient"), currency, True),
        "lift": "control" if is_control else points(lift, signed=True) if lift is not None else "—",
    }


def _reasons(rows: Sequence[Row]) -> list[dict[str, Any]]:
    out = []
    for stage, title in words.STAGES.items():
        found = [r for r in rows if r["stage"] == stage and r["count"]]
        if not found:
            continue
        top = max(float(r["count"]) for r in found)
        out.append(
            {
                "stage": stage,
                "title": title,
                "rows": [
                    {
                        "token": r["reason"],
                        "words": words.reason_words(stage, str(r["reason"])),
                        "count": count(r["count"]),
                        "width": f"{float(r['count']) / top * 100:.1f}",
                    }
                    for r in found
                ],
            }
        )
    return out
