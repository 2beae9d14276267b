{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('viewed_product_n_times'),
    )
}}

{#- A customer's viewed_product_n-th view of one sku, counting their views of it in the order the
    warehouse learned of them (loaded_at, then occurred_at, then event_id), so the count is final when the
    view arrives. One event per customer and sku. occurred_at is the view's; loaded_at =
    greatest(occurred_at, its loaded_at). Re-read bound: derived_since(0); the affected customer and sku
    pairs' earlier views are joined. -#}
{%- set n = var('viewed_product_n') | int %}

with

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

known_events as (

    select events.*
    from events
    cross join as_of
    where events.loaded_at <= as_of.now_at

),

views as (

    select
        event_id,
        customer_id,
        occurred_at,
        loaded_at,
        {{ flowhouse.json_text('properties', 'sku') }} as sku
    from known_events
    where event_type = 'product_viewed'
        and customer_id is not null
        and {{ flowhouse.json_text('properties', 'sku') }} is not null

),

new_pairs as (

    select distinct customer_id, sku
    from views
    where loaded_at > {{ flowhouse.derived_since(0) }}

),

numbered_views as (

    select
        views.*,
        row_number() over (
            partition by views.customer_id, views.sku
            order by views.loaded_at, views.occurred_at, views.event_id
        ) as view_number
    from views
    inner join new_pairs
        on views.customer_id = new_pairs.customer_id
        and views.sku = new_pairs.sku

),

derived as (

    select
        {{ flowhouse.derived_event_id('viewed_product_n_times', ['numbered_views.customer_id', 'numbered_views.sku']) }}
            as event_id,
        numbered_views.customer_id,
        cast('viewed_product_n_times' as {{ dbt.type_string() }}) as event_type,
        numbered_views.occurred_at,
        greatest(numbered_views.occurred_at, numbered_views.loaded_at) as loaded_at,
        {{ flowhouse.json_object_of({
            'sku': 'numbered_views.sku',
            'views': 'cast(numbered_views.view_number as integer)',
        }) }} as properties
    from numbered_views
    cross join as_of
    where numbered_views.view_number = {{ n }}
        and greatest(numbered_views.occurred_at, numbered_views.loaded_at) <= as_of.now_at

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
