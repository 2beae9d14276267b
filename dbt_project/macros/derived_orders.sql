{#- The orders behind first_purchase, repeat_purchase, milestone_order, high_value_order and
    purchase_anniversary, as a subquery over `known_events` (the stream as of the build's now).

    One row per order_id (the first order_placed loaded for it) that was loaded after `since`, with
    `order_number`: its rank among the customer's orders in the order the warehouse learned of them
    (loaded_at, then occurred_at, then event_id). Numbering by arrival keeps the numbers final: an order is
    numbered from the orders loaded before it, which later loads cannot change, so every customer has
    exactly one first purchase even when an earlier order arrives late. The customers' earlier orders are
    read for the affected customers only. -#}
{% macro derived_numbered_orders(known_events, since) -%}
    select * from (
        select
            placed.*,
            row_number() over (
                partition by placed.customer_id
                order by placed.loaded_at, placed.occurred_at, placed.event_id
            ) as order_number
        from (
            select
                orders.*,
                row_number() over (
                    partition by orders.order_id
                    order by orders.loaded_at, orders.occurred_at, orders.event_id
                ) as placement_number
            from (
                select
                    event_id,
                    customer_id,
                    occurred_at,
                    loaded_at,
                    properties,
                    coalesce({{ flowhouse.json_text('properties', 'order_id') }}, event_id) as order_id
                from {{ known_events }}
                where event_type = 'order_placed'
                    and customer_id in (
                        select customer_id
                        from {{ known_events }}
                        where event_type = 'order_placed'
                            and customer_id is not null
                            and loaded_at > {{ since }}
                    )
            ) as orders
        ) as placed
        where placed.placement_number = 1
    ) as numbered
    where numbered.loaded_at > {{ since }}
{%- endmacro %}
