{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('replenishment_due'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- An ordered product of a consumable category (var replenishment_days: category -> days) is due for
    replenishment `days` after the order when, among the rows loaded by the decision moment
    D = greatest(order + days, order loaded_at), the customer placed no later order with that sku within
    (order, order + days]. One event per order and sku. An incremental build judges the lines whose D
    falls after derived_window_since() and by now: those of the orders loaded since, and those of
    the orders placed `days` before the window (one range of occurred_at per number of days, as
    literals), read from int_order_placements, with every placement of their orders and the affected
    customers' orders (by key), never the whole stream. -#}
{%- set marks = flowhouse.take_marks(ref('int_order_placements'), 'loaded_through', through_now=true) %}
{%- set days_by_category = flowhouse.derived_replenishment_days() %}
{%- set since = flowhouse.derived_window_since() %}
{%- set now = flowhouse.flowhouse_now() %}

{%- set placements = ref('int_order_placements') %}

with

as_of as (

    select {{ now }} as now_at

),

window_orders as (

    -- the orders whose lines may be decided in (since, now]: a placement loaded since, or placed
    -- `days` before the window (one select per range, so that each prunes)
    select order_id from {{ placements }}
    where loaded_at > {{ since }} and loaded_at <= {{ now }}
    {%- for days in days_by_category.values() | unique | sort %}
    union
    select order_id from {{ placements }}
    where occurred_at > {{ since }} - {{ days }} * interval '1 day'
        and occurred_at <= {{ now }} - {{ days }} * interval '1 day'
        and loaded_at <= {{ now }}
    {%- endfor %}

),

candidate_orders as (

    -- every placement of those orders (a replayed order is judged on its earliest line)
    select event_id, customer_id, occurred_at, loaded_at, properties, order_id
    from {{ placements }}
    where order_id in (select order_id from window_orders)
        and loaded_at <= {{ now }}

),

recent_lines as (

    select
        lines.order_id,
        lines.customer_id,
        lines.occurred_at,
        lines.loaded_at,
        {{ flowhouse.json_text('lines.value', 'sku') }} as sku,
        {%- if days_by_category %}
        case {{ flowhouse.json_text('lines.value', 'category') }}
            {%- for category, days in days_by_category.items() %}
            when '{{ category }}' then {{ days }}
            {%- endfor %}
        end as days
        {%- else %}
        cast(null as integer) as days
        {%- endif %}
    from {{ flowhouse.json_array_elements(
        'candidate_orders', 'properties', 'lines', ['order_id', 'customer_id', 'occurred_at', 'loaded_at']
    ) }} as lines

),

candidates as (

    select
        order_id,
        customer_id,
        sku,
        min(days) as days,
        min(occurred_at) as ordered_at,
        min(occurred_at + days * interval '1 day') as due_at,
        min(greatest(occurred_at + days * interval '1 day', loaded_at)) as decided_at
    from recent_lines
    where days is not null
        and sku is not null
    group by order_id, customer_id, sku

),

undecided as (

    -- lines decided at or before the previous builds were emitted by them (or were reordered in time)
    select candidates.*
    from candidates
    cross join as_of
    where candidates.decided_at <= as_of.now_at
        and candidates.decided_at > {{ since }}

),

affected_orders as (

    select customer_id, occurred_at, loaded_at, properties
    from {{ placements }}
    where customer_id in (select customer_id from undecided)
        and loaded_at <= {{ now }}

),

affected_lines as (

    select
        lines.customer_id,
        lines.occurred_at,
        lines.loaded_at,
        {{ flowhouse.json_text('lines.value', 'sku') }} as sku
    from {{ flowhouse.json_array_elements(
        'affected_orders', 'properties', 'lines', ['customer_id', 'occurred_at', 'loaded_at']
    ) }} as lines

),

due as (

    select undecided.*
    from undecided
    where not exists (
        select 1
        from affected_lines as later
        where later.customer_id = undecided.customer_id
            and later.sku = undecided.sku
            and later.loaded_at <= undecided.decided_at
            and later.occurred_at > undecided.ordered_at
            and later.occurred_at <= undecided.due_at
    )

),

derived as (

    select
        {{ flowhouse.derived_event_id('replenishment_due', ['order_id', 'sku']) }} as event_id,
        customer_id,
        cast('replenishment_due' as {{ dbt.type_string() }}) as event_type,
        due_at as occurred_at,
        decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'sku': 'sku',
            'order_id': 'order_id',
            'days': 'cast(days as integer)',
        }) }} as properties
    from due

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
