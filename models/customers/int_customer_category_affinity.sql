{{ config(materialized='table') }}

with

order_lines as (

    select * from {{ ref('stg_order_lines') }}

),

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

category_spend as (

    select
        order_lines.customer_id,
        order_lines.category,
        cast(sum(order_lines.line_value) as double precision) as score,
        1 as source_priority
    from order_lines
    cross join as_of
    where order_lines.customer_id is not null
        and order_lines.category is not null
        and order_lines.ordered_at <= as_of.now_at
    group by 1, 2

),

category_views as (

    select
        events.customer_id,
        nullif(trim({{ flowhouse.json_text('events.properties', 'category') }}), '') as category,
        cast(count(*) as double precision) as score,
        2 as source_priority
    from events
    cross join as_of
    where events.event_type = 'product_viewed'
        and events.occurred_at <= as_of.now_at
        and events.loaded_at <= as_of.now_at
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

final as (

    select
        customer_id,
        category as top_category,
        cast(
            case when source_priority = 1 then 'orders' else 'views' end
            as {{ dbt.type_string() }}
        ) as top_category_source,
        cast(score / nullif(source_total, 0) as decimal(5, 4)) as top_category_share
    from ranked
    where category_rank = 1

)

select * from final
