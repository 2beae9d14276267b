{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}"
    )
}}

{#- Incremental by what changed (macros/incremental.sql): a build recomputes the customers with an order
    line or a product view loaded since its last one, or whose order or view time the build's now
    passed, from all of their lines and views. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}

with

changed as (

    {{ flowhouse.changed_keys('customer_id', [
        {'relation': ref('stg_order_lines'), 'loaded': 'loaded_at', 'times': ['ordered_at']},
        {'relation': ref('stg_events'), 'loaded': 'loaded_at', 'times': ['occurred_at', 'loaded_at'],
         'where': "event_type = 'product_viewed'"},
    ], marks) }}

),

order_lines as (

    -- the lines ordered by the build's now (of the changed customers, when incremental)
    {{ flowhouse.rows_of_changed_keys(
        ref('stg_order_lines'), 'customer_id', 'changed', marks,
        'customer_id is not null and category is not null', known=['ordered_at']
    ) }}

),

events as (

    -- the views known at the build's now (of the changed customers, when incremental)
    {{ flowhouse.rows_of_changed_keys(
        ref('stg_events'), 'customer_id', 'changed', marks,
        "event_type = 'product_viewed'", known=['occurred_at', 'loaded_at']
    ) }}

),

category_spend as (

    select
        order_lines.customer_id,
        order_lines.category,
        cast(sum(order_lines.line_value) as double precision) as score,
        1 as source_priority
    from order_lines
    group by 1, 2

),

category_views as (

    select
        events.customer_id,
        nullif(trim({{ flowhouse.json_text('events.properties', 'category') }}), '') as category,
        cast(count(*) as double precision) as score,
        2 as source_priority
    from events
    group by 1, 2

),

candidates as (

    -- spend decides; views only for customers without a categorised purchase. One ranking over both
    -- (rather than an anti-join of views against buyers): simpler, and as fast where most customers
    -- never bought.
    select * from category_spend
    union all
    select * from category_views
    where customer_id is not null and category is not null

),

ranked as (

    select
        customer_id,
        category,
        source_priority,
        score,
        sum(score) over (partition by customer_id, source_priority) as source_total,
        row_number() over (
            partition by customer_id order by source_priority, score desc, category
        ) as category_rank
    from candidates

),

stamps as (

    select
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through

),

final as (

    select
        customer_id,
        category as top_category,
        cast(
            case when source_priority = 1 then 'orders' else 'views' end
            as {{ dbt.type_string() }}
        ) as top_category_source,
        cast(score / nullif(source_total, 0) as decimal(5, 4)) as top_category_share,
        stamps.refreshed_at,
        stamps.loaded_through
    from ranked
    cross join stamps
    where category_rank = 1

)

select * from final
