"""Hostile flow files, predicates and YAML documents: each refused with its exact located error
(or accepted with its exact outcome), never a crash, a hang or a silent "last wins"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flowhouse.flows.load import read_flows

FLOW = """\
flow: hostile
name: Hostile
trigger:
  event: cart_abandoned
  where: {where}
steps:
  - id: wait_1h
    wait: 1h
"""

UNBOUNDED = "it generates a set or a value of unbounded size"

#: (case, the trigger predicate, the exact problems `validate` reports: "line: field: message").
PREDICATES: list[tuple[str, str, list[str]]] = [
    ("accepted", "event.value >= 20", []),
    ("range", "len(range(1000000000)) > 0",
     [f"5: trigger.where: function range()/generate_series() is not allowed in a predicate: "
      f"{UNBOUNDED} (got 'range()/generate_series')"]),
    ("generate_series", "list_contains(generate_series(1, 1000000000), 5)",
     [f"5: trigger.where: function range()/generate_series() is not allowed in a predicate: "
      f"{UNBOUNDED} (got 'range()/generate_series')"]),
    ("repeat", "repeat('x', 2000000000) = event.cart_id",
     [f"5: trigger.where: function REPEAT() is not allowed in a predicate: {UNBOUNDED} "
      "(got 'REPEAT')"]),
    ("lpad", "lpad(event.cart_id, 2000000000, 'x') = 'y'",
     [f"5: trigger.where: function lpad()/rpad() is not allowed in a predicate: {UNBOUNDED} "
      "(got 'lpad()/rpad')"]),
    ("unnest", "unnest([1, 2]) = 1",
     [f"5: trigger.where: function unnest() is not allowed in a predicate: {UNBOUNDED} "
      "(got 'unnest')"]),
    ("aggregate", "count(*) > 0",
     ["5: trigger.where: aggregate function COUNT() is not allowed in a predicate (it judges "
      "one row) (got 'COUNT')"]),
    ("window", "row_number() over () = 1",
     ["5: trigger.where: a window function (OVER) is not allowed in a predicate"]),
    ("lambda", "list_transform([1], x -> x * 2) = [2]",
     [f"5: trigger.where: function list_transform() is not allowed in a predicate: {UNBOUNDED} "
      "(got 'list_transform')",
      "5: trigger.where: a lambda (->) is not allowed in a predicate"]),
    ("unterminated comment", "/*",
     ["5: trigger.where: not valid SQL: Error tokenizing '/' (got '/*')"]),
    ("a lone arrow", "->", ["5: trigger.where: not valid SQL (got '->')"]),
    ("3,000 parentheses", "(" * 3000 + "true" + ")" * 3000,
     ["5: trigger.where: too long: 6004 characters, at most 4000 in a predicate"]),
    ("1,500 parentheses", "(" * 1500 + "true" + ")" * 1500,
     ["5: trigger.where: nested too deeply: 1500 levels of parentheses, at most 20"]),
    ("deep operators", " + ".join(["event.value"] * 60) + " > 0",
     ["5: trigger.where: nested too deeply: at most 40 levels of operators"]),
    ("many terms", f"event.value in ({', '.join(str(i) for i in range(600))})",
     ["5: trigger.where: too large: more than 500 terms in a predicate"]),
    ("long literal", "event.cart_id = '" + "x" * 2000 + "'",
     ["5: trigger.where: text literal too long: 2000 characters, at most 1000"]),
]  # fmt: skip


def _validate(folder: Path, name: str, text: str | bytes) -> list[str]:
    folder.mkdir(exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    found = read_flows([folder])
    return [str(p).removeprefix(f"{path}:") for p in found.problems]


@pytest.mark.parametrize(
    ("case", "where", "expected"), PREDICATES, ids=[c for c, _, _ in PREDICATES]
)
def test_hostile_predicates(tmp_path: Path, case: str, where: str, expected: list[str]) -> None:
    assert _validate(tmp_path / "flows", "f.yml", FLOW.format(where=f'"{where}"')) == expected


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)

#: (case, a flow file's text, the exact problems `validate` reports).
DOCUMENTS: list[tuple[str, str | bytes, list[str]]] = [
    ("billion laughs", LAUGHS,
     ["1:13: not valid YAML: expands to more than 100000 values (aliases of aliases?)"]),
    ("many aliases", "a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n",
     ["2:405: not valid YAML: too many aliases: more than 100"]),
    ("deep nesting", "a: " + "[" * 60 + "]" * 60 + "\n",
     ["1:53: not valid YAML: nested too deeply: more than 50 levels"]),
    ("deep block nesting", "".join("  " * i + f"k{i}:\n" for i in range(60)),
     ["51:101: not valid YAML: nested too deeply: more than 50 levels"]),
    ("duplicate key", FLOW.format(where='"event.value > 1"') + "flow: other\n",
     ["9:1: not valid YAML: duplicate key 'flow': also at line 1; a key may appear once in a "
      "mapping"]),
    ("duplicate nested key", FLOW.format(where='"event.value > 1"').replace(
        "  where:", "  event: order_placed\n  where:"),
     ["5:3: not valid YAML: duplicate key 'event': also at line 4; a key may appear once in a "
      "mapping"]),
    ("too large", "# " + "x" * 1_000_000 + "\n",
     [" not valid YAML: the file is too large: 1000003 bytes, at most 1000000"]),
    ("not UTF-8", b"flow: caf\xe9\n",
     ["1:1: not valid YAML: not UTF-8 text (byte 0xe9)"]),
    ("complex key", "? [a, b]\n: 1\n",
     ["1:3: not valid YAML: a key must be a plain value, not a list or mapping"]),
    ("a list", "- 1\n- 2\n", ["1: a flow file is a YAML mapping (flow:, name:, ...)"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "expected"), DOCUMENTS, ids=[c for c, _, _ in DOCUMENTS])
def test_hostile_yaml(tmp_path: Path, case: str, text: str | bytes, expected: list[str]) -> None:
    started = time.perf_counter()
    assert _validate(tmp_path / "flows", "f.yml", text) == expected
    assert time.perf_counter() - started < 5


def test_a_duplicate_key_in_the_settings_is_refused_at_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "_settings.yml").write_text("store:\n  name: A\nstore:\n  name: B\n")
    (folder / "f.yml").write_text(FLOW.format(where='"event.value > 1"'))
    problems = [str(p) for p in read_flows([folder]).problems]
    assert problems == [
        f"{folder / '_settings.yml'}:3:1: not valid YAML: duplicate key 'store': also at line 1; "
        "a key may appear once in a mapping"
    ]
