"""What a run of the generator wrote, for the CLI to print."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flowhouse.generate.engine import EventCount
from flowhouse.generate.plan import Run


@dataclass(frozen=True)
class GenerateStats:
    run: Run
    events: tuple[EventCount, ...]

    @property
    def customers_total(self) -> int:
        return self.run.last_customer

    @property
    def event_total(self) -> int:
        return sum(c.events for c in self.events)

    @property
    def late_total(self) -> int:
        return sum(c.late_events for c in self.events)

    def events_of(self, event_type: str) -> int:
        return next((c.events for c in self.events if c.event_type == event_type), 0)

    def describe(self) -> str:
        run = self.run
        length = _duration(run.window_end_at - run.window_start_at)
        kind = "generated" if run.is_first else f"continued (window {run.run_no + 1})"
        lines = [
            f"{kind}: seed {run.seed}, window {run.window_start_at:%Y-%m-%d %H:%M} -> "
            f"{run.window_end_at:%Y-%m-%d %H:%M} UTC ({length})",
            f"customers: {self.customers_total:,} ({run.new_customers:,} signed up in the window)",
            f"products:  {run.products:,}",
            f"events:    {self.event_total:,} ({self.late_total:,} arrived more than an hour late)",
        ]
        if self.events:
            first = min(c.first_loaded_at for c in self.events)
            last = max(c.last_loaded_at for c in self.events)
            lines.append(f"loaded_at: {first:%Y-%m-%d %H:%M:%S} -> {last:%Y-%m-%d %H:%M:%S}")
        width = max((len(c.event_type) for c in self.events), default=0)
        lines += [f"  {c.event_type:<{width}}  {c.events:>12,}" for c in self.events]
        return "\n".join(lines)


def _duration(length: timedelta) -> str:
    days = length / timedelta(days=1)
    if days >= 1:
        return f"{days:.3g} day" + ("" if days == 1 else "s")
    return f"{length / timedelta(hours=1):.3g} h"
