{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('cart_abandoned'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- A cart is abandoned cart_abandon_after_minutes after an activity (added_to_cart, checkout_started)
    when, among the rows loaded by the decision moment D = greatest(activity + window, activity loaded_at),
    the cart had no later activity and the customer placed no order within [activity, activity + window].
    One event per cart: the candidate decided first. Its contents are the cart's events of the customer
    who abandoned it, known at the decision, up to and including the last activity.
    An incremental build reads the cart activity that may decide after its last one
    (derived_window_rows), the cart events and orders that occurred from the earliest of it to the
    window after the latest (derived_lookback_rows: the later activity of the carts, the customers'
    orders), and the contents of the abandoned carts from their customers' cart events of any time.
    margin_pct is the added lines' gross margin share at the catalog's current cost (the catalog keeps no
    history); unknown (null) when a line's cost or price is, or the lines are worth nothing. -#}
{%- set window_minutes = var('cart_abandon_after_minutes') | int %}
{%- set cart_where = flowhouse.event_types_in('event_type', ['added_to_cart', 'checkout_started'])
    ~ " and customer_id is not null" %}
{%- set orders_where = "event_type = 'order_placed' and customer_id is not null" %}
{%- set columns = 'event_id, customer_id, event_type, occurred_at, loaded_at, properties' %}
{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}
{%- set span = flowhouse.derived_candidate_span(cart_where, window_minutes, marks, 0, window_minutes) %}
{%- set of_abandoners = flowhouse.derived_candidate_customers(
    'customer_events.customer_id', cart_where, window_minutes, marks,
    'customer_events.customer_id in (select customer_id from first_abandonment)') %}
{#- the contents come from the latest checkout unless items were added after it -#}
{%- set checkout_wins = 'latest_checkout.checkout_started_at >= coalesce(added_lines.last_added_at,'
    ~ ' latest_checkout.checkout_started_at)' %}

with

products as (

    select * from {{ ref('stg_products') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

new_activity as (

    select
        activity.*,
        {{ flowhouse.json_text('activity.properties', 'cart_id') }} as cart_id
    from ({{ flowhouse.derived_window_rows(cart_where, window_minutes, marks, columns) }}) as activity
    where {{ flowhouse.json_text('activity.properties', 'cart_id') }} is not null

),

nearby_cart_events as (

    -- the cart events around the candidates: the later activity of their carts
    select
        nearby.*,
        {{ flowhouse.json_text('nearby.properties', 'cart_id') }} as cart_id
    from ({{ flowhouse.derived_lookback_rows(cart_where, span, columns) }}) as nearby

),

affected_cart_events as (

    select * from nearby_cart_events
    where cart_id in (select cart_id from new_activity)

),

affected_orders as (

    select * from (
        {{ flowhouse.derived_lookback_rows(orders_where, span, 'customer_id, occurred_at, loaded_at') }}
    ) as nearby
    where customer_id in (select customer_id from new_activity)

),

candidates as (

    select
        event_id,
        customer_id,
        cart_id,
        occurred_at as last_activity_at,
        occurred_at + {{ window_minutes }} * interval '1 minute' as abandoned_at,
        greatest(occurred_at + {{ window_minutes }} * interval '1 minute', loaded_at) as decided_at
    from new_activity

),

abandoned as (

    select candidates.*
    from candidates
    cross join as_of
    where candidates.decided_at <= as_of.now_at
        and not exists (
            select 1
            from affected_cart_events as later
            where later.cart_id = candidates.cart_id
                and later.loaded_at <= candidates.decided_at
                and later.occurred_at <= candidates.abandoned_at
                and (
                    later.occurred_at > candidates.last_activity_at
                    or (
                        later.occurred_at = candidates.last_activity_at
                        and later.event_id > candidates.event_id
                    )
                )
        )
        and not exists (
            select 1
            from affected_orders as orders
            where orders.customer_id = candidates.customer_id
                and orders.loaded_at <= candidates.decided_at
                and orders.occurred_at >= candidates.last_activity_at
                and orders.occurred_at <= candidates.abandoned_at
        )

),

first_abandonment as (

    select * from (
        select
            abandoned.*,
            row_number() over (
                partition by cart_id order by decided_at, abandoned_at, event_id
            ) as abandonment_number
        from abandoned
    ) as ranked
    where abandonment_number = 1

),

customer_cart_events as (

    -- the cart events of any time of the customers with an abandoned cart (with a candidate, as a
    -- list)
    select
        customer_events.*,
        {{ flowhouse.json_text('customer_events.properties', 'cart_id') }} as cart_id
    from {{ ref('stg_events') }} as customer_events
    cross join as_of
    where {{ flowhouse.event_types_in('customer_events.event_type', ['added_to_cart', 'checkout_started']) }}
        and customer_events.loaded_at <= as_of.now_at
        and {{ of_abandoners }}

),

cart_contents as (

    -- the cart's events of its customer known at the decision, up to and including its last activity
    select
        first_abandonment.cart_id,
        cart.event_id,
        cart.event_type,
        cart.occurred_at,
        cart.properties
    from first_abandonment
    inner join customer_cart_events as cart
        on cart.cart_id = first_abandonment.cart_id
        and cart.customer_id = first_abandonment.customer_id
        and cart.loaded_at <= first_abandonment.decided_at
        and (
            cart.occurred_at < first_abandonment.last_activity_at
            or (
                cart.occurred_at = first_abandonment.last_activity_at
                and cart.event_id <= first_abandonment.event_id
            )
        )

),

additions as (

    select
        cart_id,
        occurred_at,
        {{ flowhouse.json_text('properties', 'sku') }} as sku,
        coalesce({{ flowhouse.json_number('properties', 'quantity') }}, 1) as quantity,
        first_value({{ flowhouse.json_number('properties', 'price') }}) over (
            partition by cart_id, {{ flowhouse.json_text('properties', 'sku') }}
            order by occurred_at desc, event_id desc
        ) as price
    from cart_contents
    where event_type = 'added_to_cart'

),

added_skus as (

    select
        cart_id,
        sku,
        cast(sum(quantity) as integer) as quantity,
        max(price) as price,
        max(occurred_at) as last_added_at
    from additions
    group by cart_id, sku

),

costed_skus as (

    -- each added sku's value and gross margin in exact money, at the catalog's current unit cost
    select
        added_skus.*,
        added_skus.quantity * {{ flowhouse.money('added_skus.price') }} as line_value,
        added_skus.quantity * ({{ flowhouse.money('added_skus.price') }} - products.cost)
            as line_margin
    from added_skus
    left join products
        on added_skus.sku = products.sku

),

added_lines as (

    select
        cart_id,
        {{ flowhouse.derived_json_array_agg(
            flowhouse.json_object_of({'sku': 'sku', 'quantity': 'quantity', 'price': 'price'}),
            'sku'
        ) }} as lines,
        sum(quantity * price) as value,
        -- unknown when any line's cost (or price) is, or when the lines are worth nothing
        case
            when count(*) = count(line_margin)
                then sum(line_margin) / nullif(sum(line_value), 0)
        end as margin_share,
        max(last_added_at) as last_added_at
    from costed_skus
    group by cart_id

),

latest_checkout as (

    select * from (
        select
            cart_id,
            occurred_at as checkout_started_at,
            {{ flowhouse.json_number('properties', 'value') }} as value,
            {{ flowhouse.json_get('properties', 'lines') }} as lines,
            row_number() over (
                partition by cart_id order by occurred_at desc, event_id desc
            ) as checkout_number
        from cart_contents
        where event_type = 'checkout_started'
    ) as ranked
    where checkout_number = 1

),

derived as (

    select
        {{ flowhouse.derived_event_id('cart_abandoned', ['first_abandonment.cart_id']) }}
            as event_id,
        first_abandonment.customer_id,
        cast('cart_abandoned' as {{ dbt.type_string() }}) as event_type,
        first_abandonment.abandoned_at as occurred_at,
        first_abandonment.decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'cart_id': 'first_abandonment.cart_id',
            'value': 'cast(case when ' ~ checkout_wins ~ ' then latest_checkout.value'
                ~ ' else added_lines.value end as decimal(14, 2))',
            'margin_pct': 'cast(round(added_lines.margin_share, 4) as decimal(18, 4))',
            'lines': 'case when ' ~ checkout_wins ~ ' then latest_checkout.lines'
                ~ ' else added_lines.lines end',
            'last_activity_at': flowhouse.derived_iso_timestamp('first_abandonment.last_activity_at'),
        }) }} as properties
    from first_abandonment
    left join added_lines
        on first_abandonment.cart_id = added_lines.cart_id
    left join latest_checkout
        on first_abandonment.cart_id = latest_checkout.cart_id

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
