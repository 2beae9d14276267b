{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('search_without_purchase'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- A search goes without purchase when, among the rows loaded by the decision moment
    D = greatest(search + window, search loaded_at), the customer neither added to a cart, started a
    checkout nor placed an order within (search, search + search_abandon_after_minutes].
    An incremental build reads the searches that may decide after its last one (derived_window_rows)
    and, of their customers, the cart and order events that occurred from the earliest of them to the
    window after the latest (derived_lookback_rows). -#}
{%- set window_minutes = var('search_abandon_after_minutes') | int %}
{%- set searches_where = "event_type = 'searched' and customer_id is not null" %}
{%- set steps_where = flowhouse.event_types_in(
    'event_type', ['added_to_cart', 'checkout_started', 'order_placed']) ~ " and customer_id is not null" %}
{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}
{%- set span = flowhouse.derived_candidate_span(searches_where, window_minutes, marks, 0, window_minutes) %}

with

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

new_searches as (

    {{ flowhouse.derived_window_rows(
        searches_where, window_minutes, marks, 'event_id, customer_id, occurred_at, loaded_at, properties'
    ) }}

),

affected_purchase_steps as (

    select * from (
        {{ flowhouse.derived_lookback_rows(steps_where, span, 'event_id, customer_id, occurred_at, loaded_at') }}
    ) as nearby
    where customer_id in (select customer_id from new_searches)

),

candidates as (

    select
        event_id,
        customer_id,
        occurred_at as searched_at,
        properties,
        occurred_at + {{ window_minutes }} * interval '1 minute' as abandoned_at,
        greatest(occurred_at + {{ window_minutes }} * interval '1 minute', loaded_at) as decided_at
    from new_searches

),

unconverted as (

    select candidates.*
    from candidates
    cross join as_of
    where candidates.decided_at <= as_of.now_at
        and not exists (
            select 1
            from affected_purchase_steps as later
            where later.customer_id = candidates.customer_id
                and later.loaded_at <= candidates.decided_at
                and later.occurred_at > candidates.searched_at
                and later.occurred_at <= candidates.abandoned_at
        )

),

derived as (

    select
        {{ flowhouse.derived_event_id('search_without_purchase', ['event_id']) }} as event_id,
        customer_id,
        cast('search_without_purchase' as {{ dbt.type_string() }}) as event_type,
        abandoned_at as occurred_at,
        decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'query': flowhouse.json_text('properties', 'query'),
        }) }} as properties
    from unconverted

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
