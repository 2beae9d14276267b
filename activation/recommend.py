"""Product recommendations for the messages being sent, computed in the warehouse.

For a batch of claimed messages (a table of ``message_id, customer_id, enrollment_id``) three
lists per message, each one set-based statement over the whole batch:

- ``recently_viewed``: the customer's latest viewed products (``core.product_interest``), without
  those ordered since the view;
- ``popular``: the products in the most orders over the 30 days before now, store-wide (computed
  once, the same for everyone);
- ``complementary``: the products most often in the same orders as the trigger's skus (its
  ``lines``, or its ``sku``) over the last 180 days, without those skus and without what the
  customer already bought; ranked by the number of shared orders.

Every list holds in-stock catalog products only (an unknown ``inventory_qty`` counts as in stock),
with the catalog's name, url, picture and price, and breaks ties by sku. :func:`blend` makes the
template's ``products`` of them; :func:`catalog` backs ``product(sku)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlglot import exp

from flowhouse.core.sql import STATE_SCHEMA, literal, render, statement
from flowhouse.core.warehouse import Warehouse

#: The catalog (``models/staging/stg_products.sql``) and the order lines (``stg_order_lines``).
PRODUCTS = "staging.stg_products"
ORDER_LINES = "staging.stg_order_lines"
POPULAR_DAYS = 30
COMPLEMENTARY_DAYS = 180
#: Stands for the claimed-messages table in the statement texts.
_CLAIMED = "_fh_claimed"


class Product(TypedDict):
    """A catalog product as templates see it."""

    sku: str
    name: str | None
    url: str | None
    image_url: str | None
    price: float | None


class Recommendations(TypedDict):
    """One message's recommendations, best first (the template's ``recommendations``)."""

    recently_viewed: list[Product]
    popular: list[Product]
    complementary: list[Product]


_IN_STOCK = "(p.inventory_qty is null or p.inventory_qty > 0)"

# The customer's views, latest first; a product ordered at or after its latest view is left out.
RECENTLY_VIEWED = f"""
with claimed as (select distinct message_id, customer_id from {_CLAIMED})
select message_id, sku, name, url, image_url, price
from (
    select
        c.message_id, p.sku, p.name, p.url, p.image_url, p.price,
        row_number() over (
            partition by c.message_id order by pi.last_viewed_at desc, p.sku
        ) as pick
    from claimed as c
    join core.product_interest as pi on pi.customer_id = c.customer_id
    join {PRODUCTS} as p on p.sku = pi.sku
    where pi.last_viewed_at <= :now
        and (pi.last_ordered_at is null or pi.last_ordered_at < pi.last_viewed_at)
        and {_IN_STOCK}
) as ranked
where pick <= :limit
order by message_id, pick
"""

# Store-wide: the products in the most orders of the window (then the most units, then sku).
POPULAR = f"""
with ordered as (
    select sku, count(distinct order_id) as orders, sum(quantity) as units
    from {ORDER_LINES}
    where ordered_at >= :since and ordered_at < :now
    group by sku
)
select p.sku, p.name, p.url, p.image_url, p.price
from ordered as o
join {PRODUCTS} as p on p.sku = o.sku
where {_IN_STOCK}
order by o.orders desc, o.units desc, p.sku
limit :limit
"""

# json_elements(json, 'key') is each element of the array at key (a set-returning function) and
# json_is_array(json, 'key') whether there is one: see _expand. Messages whose triggers name the
# same skus (a catalog event fanned out to its audience) share one count of the orders: by `basket`,
# the trigger's skus sorted and joined.
COMPLEMENTARY = f"""
with claimed as (select distinct message_id, customer_id, enrollment_id from {_CLAIMED}),
triggers as (
    select c.message_id, e.trigger_properties
    from claimed as c
    join flowhouse.enrollments as e on e.enrollment_id = c.enrollment_id
),
trigger_lines as (
    select message_id, json_elements(trigger_properties, 'lines') as line
    from triggers
    where json_is_array(trigger_properties, 'lines')
),
trigger_skus as (
    select message_id, sku
    from (
        select message_id, json_text(line, 'sku') as sku from trigger_lines
        union
        select message_id, json_text(trigger_properties, 'sku') as sku from triggers
    ) as found
    where sku is not null
),
message_baskets as (
    select message_id, string_agg(sku, chr(31) order by sku) as basket
    from trigger_skus
    group by message_id
),
basket_skus as (
    select distinct b.basket, t.sku
    from message_baskets as b
    join trigger_skus as t on t.message_id = b.message_id
),
recent_lines as (
    select order_id, sku
    from {ORDER_LINES}
    where ordered_at >= :since and ordered_at < :now and sku is not null
),
basket_orders as (
    select distinct b.basket, ol.order_id
    from basket_skus as b
    join recent_lines as ol on ol.sku = b.sku
),
together as (
    select o.basket, ol.sku, count(distinct o.order_id) as orders
    from basket_orders as o
    join recent_lines as ol on ol.order_id = o.order_id
    where not exists (select 1 from basket_skus as b where b.basket = o.basket and b.sku = ol.sku)
    group by o.basket, ol.sku
),
basket_ranked as (
    select
        t.basket, t.sku,
        row_number() over (partition by t.basket order by t.orders desc, t.sku) as place
    from together as t
    join {PRODUCTS} as p on p.sku = t.sku
    where {_IN_STOCK}
),
bought as (
    select distinct c.message_id, ol.sku
    from claimed as c
    join {ORDER_LINES} as ol on ol.customer_id = c.customer_id
    where ol.ordered_at < :now
),
basket_needs as (
    -- a message drops at most what its customer bought: a basket's first `limit` plus that many
    -- candidates always hold each of its messages' first `limit`
    select basket, max(needed) as needed
    from (
        select m.message_id, m.basket, :limit + count(b.sku) as needed
        from message_baskets as m
        left join bought as b on b.message_id = m.message_id
        group by m.message_id, m.basket
    ) as per_message
    group by basket
),
candidates as (
    select r.basket, r.sku, r.place
    from basket_ranked as r
    join basket_needs as n on n.basket = r.basket
    where r.place <= n.needed
)
select message_id, sku, name, url, image_url, price
from (
    select
        m.message_id, p.sku, p.name, p.url, p.image_url, p.price,
        row_number() over (partition by m.message_id order by c.place) as pick
    from message_baskets as m
    join candidates as c on c.basket = m.basket
    join {PRODUCTS} as p on p.sku = c.sku
    where not exists (
        select 1 from bought as b where b.message_id = m.message_id and b.sku = c.sku
    )
) as ranked
where pick <= :limit
order by message_id, pick
"""

MESSAGES = f"select distinct message_id from {_CLAIMED}"

CATALOG = f"select sku, name, url, image_url, price from {PRODUCTS} order by sku"


# -- the public functions ----------------------------------------------------------------------


def recommendations(
    wh: Warehouse,
    claimed: str,
    now: datetime,
    limit: int = 4,
    schema: str = STATE_SCHEMA,
) -> dict[str, Recommendations]:
    """Each claimed message's recommendations, by message_id (empty lists when there are none).

    `claimed` names a table of ``message_id, customer_id, enrollment_id``; `schema` is the
    engine's state schema (its ``enrollments`` hold the trigger's properties).
    """
    run = _Runner(wh, claimed, schema)
    messages = [str(row[0]) for row in run.rows(MESSAGES)]
    if not messages:
        return {}
    popular = _products(run.rows(POPULAR, now=now, since=_before(now, POPULAR_DAYS), limit=limit))
    viewed = _grouped(run.rows(RECENTLY_VIEWED, now=now, limit=limit))
    since = _before(now, COMPLEMENTARY_DAYS)
    bought_with = _grouped(run.rows(COMPLEMENTARY, now=now, since=since, limit=limit))
    return {
        m: {
            "recently_viewed": viewed.get(m, []),
            "popular": list(popular),
            "complementary": bought_with.get(m, []),
        }
        for m in messages
    }


def blend(r: Recommendations, limit: int = 4) -> list[Product]:
    """The template's ``products``: complementary first, then recently viewed, then popular,
    each product once, at most `limit`."""
    picked: dict[str, Product] = {}
    for item in [*r["complementary"], *r["recently_viewed"], *r["popular"]]:
        if len(picked) >= limit:
            break
        picked.setdefault(item["sku"], item)
    return list(picked.values())


def catalog(wh: Warehouse, skus: set[str] | None = None) -> dict[str, Product]:
    """Products by sku, for the template's ``product(sku)``: these `skus` (those the catalog has),
    or the whole catalog when None. Out-of-stock products are included."""
    if skus is not None and not skus:
        return {}
    tree = statement(CATALOG)
    if skus is not None:
        assert isinstance(tree, exp.Select)
        tree = tree.where(exp.column("sku").isin(*[literal(s) for s in sorted(skus)]))
    return {p["sku"]: p for p in _products(wh.query(render(tree, wh.dialect)))}


# -- statements ----------------------------------------------------------------------------------


class _Runner:
    """Runs the statement texts against one claimed table and state schema."""

    def __init__(self, wh: Warehouse, claimed: str, schema: str) -> None:
        self.wh = wh
        self.claimed = claimed
        self.schema = schema

    def rows(self, text: str, **values: Any) -> list[tuple[Any, ...]]:
        tree = statement(text, self.schema, **values)
        for table in tree.find_all(exp.Table):
            if table.name == _CLAIMED and not table.db:
                source = exp.to_table(self.claimed)
                for part in ("this", "db", "catalog"):
                    table.set(part, source.args.get(part))
        tree = tree.transform(lambda node: _expand(node, self.wh.dialect), copy=False)
        return self.wh.query(render(tree, self.wh.dialect))


def _expand(node: exp.Expr, dialect: str) -> exp.Expr:
    """``json_elements`` and ``json_is_array`` for the warehouse (see :data:`COMPLEMENTARY`)."""
    build = _PORTABLE.get(node.name.lower()) if isinstance(node, exp.Anonymous) else None
    if build is None:
        return node
    value, key = node.expressions
    return build(value, key, dialect)


def _json_elements(value: exp.Expr, key: exp.Expr, dialect: str) -> exp.Expr:
    if dialect == "postgres":
        return _call("jsonb_array_elements", _call("jsonb_extract_path", value, key))
    array = _call("json_extract", value, exp.Literal.string("$." + key.name))
    return _call("unnest", _call("from_json", array, exp.Literal.string('["json"]')))


def _json_is_array(value: exp.Expr, key: exp.Expr, dialect: str) -> exp.Expr:
    if dialect == "postgres":
        kind = _call("jsonb_typeof", _call("jsonb_extract_path", value, key))
        return kind.eq(exp.Literal.string("array"))
    kind = _call("json_type", value, exp.Literal.string("$." + key.name))
    return kind.eq(exp.Literal.string("ARRAY"))


_PORTABLE: dict[str, Callable[[exp.Expr, exp.Expr, str], exp.Expr]] = {
    "json_elements": _json_elements,
    "json_is_array": _json_is_array,
}


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    """A function call written as is (no dialect translation)."""
    return exp.Anonymous(this=name, expressions=list(args))


# -- rows ----------------------------------------------------------------------------------------


def _before(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def _empty() -> Recommendations:
    return {"recently_viewed": [], "popular": [], "complementary": []}


def _product(row: tuple[Any, ...]) -> Product:
    sku, name, url, image_url, price = row
    return {
        "sku": str(sku),
        "name": name,
        "url": url,
        "image_url": image_url,
        "price": None if price is None else float(price),
    }


def _grouped(rows: list[tuple[Any, ...]]) -> dict[str, list[Product]]:
    """Rows of (message_id, product columns...) as each message's products, in row order."""
    found: dict[str, list[Product]] = {}
    for row in rows:
        found.setdefault(str(row[0]), []).append(_product(row[1:]))
    return found


def _products(rows: list[tuple[Any, ...]]) -> list[Product]:
    return [_product(row) for row in rows]
