"""Coupon pools: the codes ``coupon`` actions and coupon sends hand out, one per customer message.

Codes live in ``flowhouse.coupon_codes``; add a store's own codes from a file, or generate codes
(``PREFIX`` + 10 characters of md5 over pool and number: unguessable enough for a demo, stable).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlglot import exp

from flowhouse.core.errors import ConfigError, FileLocation
from flowhouse.core.sql import STATE_SCHEMA, render, statement
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Warehouse

_GENERATE = """
insert into flowhouse.coupon_codes (pool, code, added_at)
select :pool, n.code, :now
from (
    select :prefix || upper(substr(md5(:pool || ':' || cast(g.i as text)), 1, 10)) as code
    from generate_series(:first, :last) as g(i)
) as n
where not exists (
    select 1 from flowhouse.coupon_codes as c where c.pool = :pool and c.code = n.code
)
"""


def generate_codes(
    wh: Warehouse,
    pool: str,
    count: int,
    now: datetime,
    prefix: str = "",
    schema: str = STATE_SCHEMA,
) -> int:
    """Add `count` generated codes to `pool` (numbered after the pool's existing codes)."""
    ensure_state(wh, schema)
    have = int(wh.scalar(render(statement(
        "select count(*) from flowhouse.coupon_codes where pool = :pool", schema, pool=pool
    ), wh.dialect)) or 0)  # fmt: skip
    wh.execute(
        render(
            statement(
                _GENERATE, schema, pool=pool, prefix=prefix, now=now, first=have + 1,
                last=have + count,
            ),
            wh.dialect,
        )
    )  # fmt: skip
    wh.commit()
    return count


def add_codes(
    wh: Warehouse, pool: str, file: Path, now: datetime, schema: str = STATE_SCHEMA
) -> int:
    """Add the codes listed in `file` (one per line; blank lines and duplicates ignored)."""
    ensure_state(wh, schema)
    codes: list[str] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        code = line.strip()
        if not code:
            continue
        if len(code) > 64 or not code.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(
                "not a coupon code",
                FileLocation(str(file), number, "code"),
                code,
                "letters, digits, - and _ (at most 64)",
            )
        codes.append(code)
    fresh = sorted(set(codes))
    if not fresh:
        return 0
    values = exp.values([(exp.Literal.string(c),) for c in fresh], alias="v", columns=["code"])
    wh.execute(
        render(
            statement(
                "insert into flowhouse.coupon_codes (pool, code, added_at) "
                "select :pool, v.code, :now from :codes "
                "where not exists (select 1 from flowhouse.coupon_codes as c "
                "where c.pool = :pool and c.code = v.code)",
                schema,
                pool=pool,
                now=now,
                codes=values,
            ),
            wh.dialect,
        )
    )
    wh.commit()
    return len(fresh)
