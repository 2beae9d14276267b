{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('viewed_product_n_times'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- A customer's viewed_product_n-th view of one sku, counting their views of it in the order the
    warehouse learned of them (loaded_at, then occurred_at, then event_id), so the count is final when the
    view arrives. One event per customer and sku. occurred_at is the view's; loaded_at =
    greatest(occurred_at, its loaded_at). An incremental build reads the views that may decide after its
    last one (derived_window_rows), keeps the customer and sku pairs it has no event for yet, and counts
    those pairs' views among their customers' views of any time. -#}
{%- set n = var('viewed_product_n') | int %}
{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}
{%- set event_id = flowhouse.derived_event_id('viewed_product_n_times', ['new_views.customer_id', 'new_views.sku']) %}
{%- set views_where = "event_type = 'product_viewed' and customer_id is not null" %}
{%- set of_new_pairs = flowhouse.derived_candidate_customers(
    'events.customer_id', views_where, 0, marks,
    'events.customer_id in (select customer_id from new_pairs)') %}

with

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

new_views as (

    select
        candidates.customer_id,
        {{ flowhouse.json_text('candidates.properties', 'sku') }} as sku
    from ({{ flowhouse.derived_window_rows(views_where, 0, marks, 'customer_id, properties') }}) as candidates

),

new_pairs as (

    select distinct customer_id, sku
    from new_views
    where sku is not null
    {%- if marks is not none %}
        and not exists (
            select 1 from {{ this }} as known where known.event_id = {{ event_id }}
        )
    {%- endif %}

),

customer_views as (

    -- the views of any time of the customers with a new pair (with a candidate view, as a list)
    select events.event_id, events.customer_id, events.occurred_at, events.loaded_at, events.properties
    from {{ ref('stg_events') }} as events
    cross join as_of
    where events.event_type = 'product_viewed'
        and events.loaded_at <= as_of.now_at
        and {{ of_new_pairs }}

),

views as (

    select
        event_id,
        customer_id,
        occurred_at,
        loaded_at,
        {{ flowhouse.json_text('properties', 'sku') }} as sku
    from customer_views

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
