"""Hostile templates: each fails its own message, located, within the render bounds of
:mod:`flowhouse.flows.bounds`; no template stops a send or leaves a message claimed. On DuckDB and
PostgreSQL for the send through the command line."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import flow
from sending import TEMPLATES, deploy, sending_store

from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.cli import cli
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.bounds import Limits, describe, output_chars, render_bounded
from flowhouse.flows.templating import render, template_environment

LIMIT = "(the limit is 1,000,000)"
RANGE = "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000). (OverflowError)"

# (case, template text, the exact error: "template templates/h.txt.j2 line N: ..." or output)
HOSTILE = [
    ("division by zero", "Hi\n{{ 100 / (customer.order_count or 0) }}",
     "line 2: division by zero (ZeroDivisionError)"),
    ("range of a billion in a loop", "{% for i in range(10**9) %}x{% endfor %}",
     f"line 1: {RANGE}"),
    ("range of a billion as a list", "{{ range(10**9)|list }}", f"line 1: {RANGE}"),
    ("recursive macro", "{% macro m(n) %}{{ m(n) }}{% endmacro %}\n{{ m(1) }}",
     "line 1: macros nested deeper than 50 calls"),
    ("macro recursing twice per call (a while loop)",
     "{% macro m(n) %}{{ m(n + 1) }}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
     "line 1: macros nested deeper than 50 calls"),
    ("nested 99,999 x 99,999 loop",
     "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
     "line 1: took longer than 0.3 s to render"),
    ("loop recursing through loop()",
     "{% for i in [[1], [2]] recursive %}{{ loop([[i, i]]) }}{% endfor %}",
     "line 1: macros or loops nested too deep (RecursionError)"),
    ("string times 10**8", "{{ 'x' * 10**8 }}",
     f"line 1: would build 100,000,000 characters or items {LIMIT}"),
    ("list times 10**8", "{{ ([0] * 10**8)|length }}",
     f"line 1: would build 100,000,000 characters or items {LIMIT}"),
    ("integer power tower", "{{ 10 ** 100000 }}", "line 1: an integer over 4096 bits"),
    ("doubling by ~ in a loop",
     "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}", f"line 1: a value of 1,048,576 characters or items {LIMIT}"),
    ("doubling by + in a loop",
     "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}", f"line 1: a value of 1,048,576 characters or items {LIMIT}"),
    ("huge join (filter)", "{{ (['x' * 1000000] * 1000)|join }}",
     f"line 1: would build 2,000,000 characters or items {LIMIT}"),
    ("huge join (method)", "{{ ''.join(['x' * 1000000] * 1000) }}",
     f"line 1: would build 2,000,000 characters or items {LIMIT}"),
    ("ljust", "{{ 'x'.ljust(10**9) }}",
     f"line 1: would build 1,000,000,000 characters or items {LIMIT}"),
    ("center filter", "{{ 'x'|center(10**9) }}",
     f"line 1: would build 1,000,000,000 characters or items {LIMIT}"),
    ("percent width", "{{ '%01000000000d' % 1 }}",
     f"line 1: would build 1,000,000,000 characters or items {LIMIT}"),
    ("format width", "{{ '{:>1000000000}'.format(1) }}",
     f"line 1: would build 1,000,000,000 characters or items {LIMIT}"),
    ("replace growth", "{{ ('x' * 1000000)|replace('x', 'xx' * 500000) }}",
     f"line 1: would build 1,000,000,000,000 characters or items {LIMIT}"),
    ("batch fill", "{{ range(3)|batch(10**9, 'x')|list }}",
     f"line 1: would build 1,000,000,000 characters or items {LIMIT}"),
    ("dunder attribute", "{{ ''.__class__.__mro__ }}",
     "line 1: access to attribute '__class__' of 'str' object is unsafe."),
    ("dunder item", "{{ customer['__class__'].__subclasses__() }}",
     "line 1: access to attribute '__class__' of 'dict' object is unsafe."),
    ("format string escape", "{{ '{0.__class__}'.format(customer) }}",
     "line 1: access to attribute '__class__' of 'dict' object is unsafe."),
    ("lipsum filler", "{{ lipsum(10**6) }}", "line 1: 'lipsum' is undefined"),
    ("output past the channel's limit", "{% for i in range(2000) %}xx{% endfor %}",
     "output longer than 1,600 characters"),
]  # fmt: skip

GOOD = [
    ("loop with loop.length", "{% for p in range(3) %}{{ loop.index }}/{{ loop.length }} "
     "{% endfor %}", "1/3 2/3 3/3 "),
    ("join of a generator", "{{ range(5)|map('string')|join(',') }}", "0,1,2,3,4"),
    ("small arithmetic and padding", "{{ '%05d' % 3 }} {{ [1, 2] * 2 }} {{ 2 ** 10 }} "
     "{{ 'ab'|center(6) }}", "00003 [1, 2, 1, 2] 1024   ab  "),
    ("at the channel's limit", "{% for i in range(800) %}xx{% endfor %}", "xx" * 800),
]  # fmt: skip

LIMITS = Limits(seconds=0.3)


def rendered(tmp_path: Path, text: str) -> str:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / "h.txt.j2").write_text(text)
    template = template_environment(folder).get_template("h.txt.j2")
    context = {"customer": {"order_count": None}}
    return render_bounded(template, context, LIMITS, output_chars("sms"))


@pytest.mark.parametrize(("case", "text", "expected"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_a_hostile_template_fails_located_within_its_bounds(
    tmp_path: Path, case: str, text: str, expected: str
) -> None:
    started = time.monotonic()
    with pytest.raises(Exception) as raised:  # noqa: PT011 - any error, described exactly
        rendered(tmp_path, text)
    where = "" if expected.startswith("output") else "template templates/h.txt.j2 "
    assert describe(raised.value, tmp_path / "templates") == where + expected
    assert time.monotonic() - started < LIMITS.seconds + 1.0


@pytest.mark.parametrize(("case", "text", "expected"), GOOD, ids=[c[0] for c in GOOD])
def test_a_good_template_renders_within_the_bounds(
    tmp_path: Path, case: str, text: str, expected: str
) -> None:
    assert rendered(tmp_path, text) == expected


def test_render_keeps_its_bounds_without_a_budget(tmp_path: Path) -> None:
    (tmp_path / "h.txt.j2").write_text("{{ 'x' * 10**8 }}")
    with pytest.raises(Exception, match="would build 100,000,000 characters"):
        render(tmp_path, "h.txt.j2", {})


# -- through the command line ----------------------------------------------------------------------

KEYS = {"FLOWHOUSE_SIGNING_KEY": "test-signing-key", "SENDGRID_API_KEY": ""}
BAD = TEMPLATES["t.html.j2"] + "\n<p>{{ 100 / (customer.order_count or 0) }}</p>\n"
GOOD_N = 30


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "postgres":
        return Location.parse(request.getfixturevalue("pg_url"))
    return Location.parse(str(tmp_path / "store.duckdb"))


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeProvider]:
    with running(FakeSettings(inbox=tmp_path / "inbox")) as provider:
        yield provider


def queued(location: Location, tmp_path: Path) -> Path:
    """A good flow and a flow whose template divides by zero, both entered by `GOOD_N`
    customers' abandoned carts at 10:00; the flows folder."""
    store = sending_store(location, tmp_path)
    email = {"channel": "email", "subject": "Hi"}
    folder = deploy(
        store,
        flow("cart", steps=[{"id": "s0", "send": {**email, "template": "t.html.j2"}}]),
        flow("bad", steps=[{"id": "s0", "send": {**email, "template": "x.html.j2"}}]),
    )
    (folder / "templates" / "x.html.j2").write_text(BAD)
    store.tick("2026-03-01 00:00")
    for i in range(GOOD_N):
        store.customer(f"c{i}", first_name="Ann")
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k{i}")
    store.tick("2026-03-01 10:00")
    store.close()
    return folder


def send(location: Location, folder: Path, fake: FakeProvider) -> Result:
    where = location.url if location.path is None else str(location.path)
    argv = ["send", "--warehouse", where, "--flows", str(folder), "--provider-url", fake.url]
    return CliRunner().invoke(cli, [*argv, "--now", "2026-03-01T10:01:00"], env=KEYS)


def outcomes(location: Location) -> Counter[tuple[Any, ...]]:
    sql = "select flow_id, status, failure_reason from flowhouse.messages"
    with Warehouse.open(location) as wh:
        return Counter(tuple(r) for r in wh.query(sql))


def test_one_bad_template_fails_its_messages_and_every_other_goes_out(
    location: Location, tmp_path: Path, fake: FakeProvider
) -> None:
    folder = queued(location, tmp_path)
    first = send(location, folder, fake)
    assert first.exit_code == 3, first.output
    assert "Traceback" not in first.output
    assert f"{GOOD_N} sent, {GOOD_N} failed" in first.output
    reason = (
        "render failed: flow bad, step s0, template templates/x.html.j2 line 2: "
        "division by zero (ZeroDivisionError)"
    )
    assert outcomes(location) == {("cart", "sent", None): GOOD_N, ("bad", "failed", reason): GOOD_N}
    assert len(fake.state.messages()) == GOOD_N
    again = send(location, folder, fake)
    assert again.exit_code == 0, again.output
    assert "0 claimed" in again.output
    assert outcomes(location) == {("cart", "sent", None): GOOD_N, ("bad", "failed", reason): GOOD_N}
    assert len(fake.state.messages()) == GOOD_N
