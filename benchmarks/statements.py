"""Where a flowhouse command's warehouse time goes: every statement it runs through flowhouse's
``Warehouse`` (the engine, the sender, the loaders; not dbt's models, which dbt's log times) is
timed, and the statements are printed slowest first, grouped by their text, with how often each
ran, its share of the command's wall time and the start of its SQL.

    python benchmarks/statements.py -- tick --no-build --no-send --now 2026-10-01T00:15:00 \\
        --warehouse store.duckdb
    python benchmarks/statements.py --top 30 --width 200 -- send --warehouse store.duckdb

The command runs in this process (the flowhouse CLI's own entry point), so the figures are its
statements' wall times, as its tick or send sees them. Run it on a copy of a store: the command
does what it always does.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from flowhouse.cli import cli
from flowhouse.core.warehouse import Warehouse

#: the Warehouse methods that run a statement (each runs it itself: none calls another)
TIMED = ("execute", "execute_count", "query")


@dataclass
class Timings:
    """Each statement's wall time, by its text."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(wh: Warehouse, statement: Any, params: Sequence[Any] = ()) -> Any:
            sql = statement if isinstance(statement, str) else wh.render(statement)
            began = time.perf_counter()
            try:
                return method(wh, sql, params)
            finally:
                self.seconds.setdefault(sql, []).append(time.perf_counter() - began)

        return timed

    def report(self, wall: float, top: int, width: int) -> None:
        groups: dict[str, list[float]] = {}
        for sql, times in self.seconds.items():
            groups.setdefault(shape(sql), []).extend(times)
        total = sum(sum(t) for t in groups.values())
        print(
            f"# {sum(len(t) for t in groups.values()):,} statements in {wall:.2f} s of wall: "
            f"{total:.2f} s in the warehouse ({share(total, wall)}), the rest in Python"
        )
        print()
        print("| seconds | share | runs | statement |")
        print("|---|---|---|---|")
        ranked = sorted(groups.items(), key=lambda item: -sum(item[1]))
        for text, times in ranked[:top]:
            shown = text if len(text) <= width else text[: width - 3] + "..."
            shown = shown.replace("|", "\\|")
            print(f"| {sum(times):.2f} | {share(sum(times), wall)} | {len(times)} | `{shown}` |")


def shape(sql: str) -> str:
    """A statement's text on one line, its literals kept (a statement per flow stays apart)."""
    return re.sub(r"\s+", " ", sql).strip()


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "-"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    timings = Timings()
    for name in TIMED:
        setattr(Warehouse, name, timings.wrap(getattr(Warehouse, name)))
    began = time.perf_counter()
    code = 0
    try:
        cli.main(args.command, prog_name="flowhouse", standalone_mode=False)
    except SystemExit as stop:
        code = int(stop.code or 0)
    except click.ClickException as refused:  # a bad option: said as the CLI says it
        refused.show()
        code = refused.exit_code
    wall = time.perf_counter() - began
    print()
    timings.report(wall, args.top, args.width)
    print()
    print(f"reproduce: python benchmarks/statements.py -- {' '.join(args.command)}")
    return code


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=20, help="statements shown (default 20)")
    parser.add_argument("--width", type=int, default=160, help="characters of SQL shown")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- and a flowhouse command")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("give a flowhouse command after --, e.g. -- tick --no-build --no-send")
    if args.top < 1 or args.width < 20:
        parser.error("--top must be at least 1 and --width at least 20")
    return args


if __name__ == "__main__":
    sys.exit(main())
