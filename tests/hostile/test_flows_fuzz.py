"""Fuzzing the flow loader and the predicate validator: whatever the input, the answer is a flow or
located problems, never an unhandled exception."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowhouse.flows.files import read_flow
from flowhouse.flows.predicates import check_predicate, event_and_customer

SQL_BITS = st.sampled_from(
    ["(", ")", " and ", " or ", " not ", "event.value", "customer.order_count", " > ", " = ",
     "1", "'x'", "range(10)", "repeat('x', 9)", "count(*)", "[", "]", ",", "->", "::int",
     "coalesce(", "lower(", "select", ";", "--", "/*", "'", '"', "\\", "1e309", "null"]
)  # fmt: skip
PREDICATES = st.one_of(st.text(max_size=200), st.lists(SQL_BITS, max_size=60).map("".join))

GOOD = """\
flow: fuzz
name: Fuzz
trigger:
  event: cart_abandoned
  where: "event.value > 1"
steps:
  - id: wait_1h
    wait: 1h
"""


@settings(max_examples=300, deadline=None)
@given(PREDICATES)
def test_the_predicate_validator_never_crashes(sql: str) -> None:
    for problem in check_predicate(sql, event_and_customer()):
        assert problem.message


YAML_BITS = st.sampled_from(
    ["\n", "  ", "- ", ": ", "flow", "steps", "&a ", "*a", "[", "]", "{", "}", ",", "'", '"',
     "!!python/object ", "<<: ", "? ", "|", ">", "#", "---", "...", "%YAML 1.1", "\t", "id",
     "wait: 1h", "trigger", "event: cart_abandoned", "where: ", "1", "null", "\x00", "\ufeff"]
)  # fmt: skip
DOCUMENTS = st.one_of(
    st.text(max_size=300),
    st.lists(YAML_BITS, max_size=80).map("".join),
    st.builds(
        lambda cut, extra: GOOD[:cut] + extra + GOOD[cut:],
        st.integers(0, len(GOOD)),
        st.text(string.printable, max_size=20),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_the_flow_loader_never_crashes(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flow.yml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        parsed = read_flow(path)
    assert (parsed.flow is None) == bool(parsed.problems)
    for problem in parsed.problems:
        assert problem.file == str(path) and problem.message
