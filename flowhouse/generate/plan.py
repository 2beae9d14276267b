"""What one run of the generator covers: the store's parameters and the window of events it writes.

A store is generated in windows. The first run (``generate_store``) fixes the seed, the catalog
size, the customers who existed before the store's first window and the rate at which new customers
sign up; each later run (``continue_store``) covers the next window ``[previous end, until)``. Every
event is a deterministic function of the seed and of the window that created its customer, so a run
re-derives what happened shortly before its window and writes exactly the events whose ``loaded_at``
falls inside it: late arrivals of the previous window included, nothing twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flowhouse.core.errors import ConfigError

#: Share of the store's customer base that signs up per day.
SIGNUPS_PER_DAY = 0.0015
#: How far before its window a run re-derives sessions and orders, so their follow-ups (deliveries,
#: refunds, reviews, late arrivals) land in the right window. Longer than any follow-up chain.
LOOKBACK = timedelta(days=45)
#: Customers who existed before the first window were created over this many days before it.
PRIOR_HISTORY_DAYS = 730
EPOCH = datetime(1970, 1, 1)
CATEGORIES = 12


def epoch_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def catalog_size(customers: int) -> int:
    """clamp(customers / 200, 60, 5000), rounded up to a whole number of skus per category."""
    wanted = min(max(customers // 200, 60), 5000)
    return CATEGORIES * math.ceil(wanted / CATEGORIES)


@dataclass(frozen=True)
class Run:
    """One generated window; a row of ``raw.generator_runs``."""

    run_no: int
    seed: int
    store_start_at: datetime
    window_start_at: datetime
    window_end_at: datetime
    pre_store_customers: int
    first_customer: int
    last_customer: int
    products: int
    signups_per_day: float
    events: int = 0
    max_loaded_at: datetime | None = None

    @property
    def new_customers(self) -> int:
        return self.last_customer - self.first_customer + 1

    @property
    def is_first(self) -> bool:
        return self.run_no == 0


def first_run(customers: int, days: int, seed: int, start: datetime) -> Run:
    """The store's first window: ``customers`` in total, some of them signing up inside it."""
    if customers < 1 or days < 1:
        raise ConfigError(
            "a store needs customers and days", value=(customers, days), expected="both >= 1"
        )
    signups_per_day = round(customers * SIGNUPS_PER_DAY, 2)
    new = min(round(signups_per_day * days), customers // 2)
    pre_store = customers - new
    return Run(
        run_no=0,
        seed=seed,
        store_start_at=start,
        window_start_at=start,
        window_end_at=start + timedelta(days=days),
        pre_store_customers=pre_store,
        first_customer=pre_store + 1,
        last_customer=customers,
        products=catalog_size(customers),
        signups_per_day=signups_per_day,
    )


def next_run(previous: Run, until: datetime) -> Run:
    """The window after ``previous``, up to ``until``, with the sign-ups of that stretch."""
    if until <= previous.window_end_at:
        raise ConfigError(
            "--continue-until must be after the end of the last generated window",
            value=until.isoformat(sep=" "),
            expected=f"a timestamp after {previous.window_end_at.isoformat(sep=' ')}",
        )
    days = (until - previous.window_end_at) / timedelta(days=1)
    new = round(previous.signups_per_day * days)
    return replace(
        previous,
        run_no=previous.run_no + 1,
        window_start_at=previous.window_end_at,
        window_end_at=until,
        first_customer=previous.last_customer + 1,
        last_customer=previous.last_customer + new,
        events=0,
        max_loaded_at=None,
    )


def parameters(run: Run) -> dict[str, int]:
    """The named parameters of ``sql/params.sql`` for ``run``."""
    start = run.store_start_at
    window_start = epoch_us(run.window_start_at)
    lookback_start = epoch_us(run.window_start_at - LOOKBACK)
    origin = datetime(start.year, start.month, start.day) - timedelta(days=PRIOR_HISTORY_DAYS + 5)
    return {
        "seed": run.seed,
        "n_pre": run.pre_store_customers,
        "n_total": run.last_customer,
        "first_row_customer": 1 if run.is_first else run.first_customer,
        "n_products": run.products,
        "skus_per_category": run.products // CATEGORIES,
        "origin_us": epoch_us(origin),
        "store_start_us": epoch_us(start),
        "win_start_us": window_start,
        "win_end_us": epoch_us(run.window_end_at),
        "load_from_us": 0 if run.is_first else window_start,
        "src_from_us": epoch_us(start) if run.is_first else max(epoch_us(start), lookback_start),
        "sub_from_us": 0 if run.is_first else lookback_start,
        "prior_from_us": 0 if run.is_first else lookback_start,
    }
