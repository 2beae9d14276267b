{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('browse_abandoned'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- A product view ends a browse burst when, among the rows loaded by the decision moment
    D = greatest(view + window, view loaded_at), the customer had no view, cart activity or order within
    (view, view + browse_abandon_after_minutes]. The burst is the run of the customer's views (known at D)
    up to this one with gaps of at most the window, reaching back at most browse_burst_max_hours.
    An incremental build reads the views that may decide after its last one (derived_window_rows) and,
    of their customers, the activity that occurred from browse_burst_max_hours before the earliest of
    them to the window after the latest (derived_lookback_rows). -#}
{%- set window_minutes = var('browse_abandon_after_minutes') | int %}
{%- set burst_hours = var('browse_burst_max_hours') | int %}
{%- set views_where = "event_type = 'product_viewed' and customer_id is not null" %}
{%- set activity_where = flowhouse.event_types_in(
    'event_type', ['product_viewed', 'added_to_cart', 'checkout_started', 'order_placed']
) ~ " and customer_id is not null" %}
{%- set columns = 'event_id, customer_id, event_type, occurred_at, loaded_at, properties' %}
{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}
{%- set span = flowhouse.derived_candidate_span(
    views_where, window_minutes, marks, burst_hours * 60, window_minutes) %}

with

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

new_views as (

    {{ flowhouse.derived_window_rows(views_where, window_minutes, marks, columns) }}

),

affected_activity as (

    select * from (
        {{ flowhouse.derived_lookback_rows(activity_where, span, columns) }}
    ) as nearby
    where customer_id in (select customer_id from new_views)

),

candidates as (

    select
        event_id,
        customer_id,
        occurred_at as viewed_at,
        properties,
        occurred_at + {{ window_minutes }} * interval '1 minute' as abandoned_at,
        greatest(occurred_at + {{ window_minutes }} * interval '1 minute', loaded_at) as decided_at
    from new_views

),

abandoned as (

    select candidates.*
    from candidates
    cross join as_of
    where candidates.decided_at <= as_of.now_at
        and not exists (
            select 1
            from affected_activity as later
            where later.customer_id = candidates.customer_id
                and later.loaded_at <= candidates.decided_at
                and later.occurred_at <= candidates.abandoned_at
                and (
                    later.occurred_at > candidates.viewed_at
                    or (later.occurred_at = candidates.viewed_at and later.event_id > candidates.event_id)
                )
        )

),

burst_views as (

    select
        abandoned.event_id as burst_id,
        views.occurred_at,
        lag(views.occurred_at) over (
            partition by abandoned.event_id order by views.occurred_at, views.event_id
        ) as previous_viewed_at
    from abandoned
    inner join affected_activity as views
        on views.customer_id = abandoned.customer_id
        and views.event_type = 'product_viewed'
        and views.loaded_at <= abandoned.decided_at
        and views.occurred_at >= abandoned.viewed_at - {{ burst_hours }} * interval '1 hour'
        and (
            views.occurred_at < abandoned.viewed_at
            or (views.occurred_at = abandoned.viewed_at and views.event_id <= abandoned.event_id)
        )

),

burst_starts as (

    select
        burst_id,
        max(
            case
                when previous_viewed_at is null
                    or occurred_at > previous_viewed_at + {{ window_minutes }} * interval '1 minute'
                    then occurred_at
            end
        ) as burst_started_at
    from burst_views
    group by burst_id

),

burst_sizes as (

    select
        burst_views.burst_id,
        cast(count(*) as integer) as views
    from burst_views
    inner join burst_starts
        on burst_views.burst_id = burst_starts.burst_id
    where burst_views.occurred_at >= burst_starts.burst_started_at
    group by burst_views.burst_id

),

derived as (

    select
        {{ flowhouse.derived_event_id('browse_abandoned', ['abandoned.event_id']) }} as event_id,
        abandoned.customer_id,
        cast('browse_abandoned' as {{ dbt.type_string() }}) as event_type,
        abandoned.abandoned_at as occurred_at,
        abandoned.decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'sku': flowhouse.json_text('abandoned.properties', 'sku'),
            'category': flowhouse.json_text('abandoned.properties', 'category'),
            'views': 'burst_sizes.views',
        }) }} as properties
    from abandoned
    inner join burst_sizes
        on abandoned.event_id = burst_sizes.burst_id

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
