{{ config(materialized='incremental', unique_key='order_id', incremental_strategy='delete+insert') }}

{#- Last-touch attribution: each order goes to the latest open or click of a flowhouse message that came
    before it, when the order fell within that touch's window (var attribution_window_days, per channel
    and touch). An order without such a touch is not here. Incremental: a build redoes the customers
    whose messages or events changed since the last one. -#}

with

orders as (

    select * from {{ ref('stg_orders') }}
    {% if is_incremental() %}
    where customer_id in ({{ flowhouse.marts_changed_customers() }})
    {% endif %}

),

messages as (

    select message_id, flow_id, step_id, variant, channel
    from {{ source('flowhouse', 'messages') }}

),

windows as (

    select cast(null as varchar) as touch_key, cast(null as double precision) as window_hours
    where 1 = 0
    {%- for key, days in flowhouse.attribution_windows().items() if days is not none %}
    union all
    select '{{ key }}', {{ days }} * 24.0
    {%- endfor %}

),

engagement as (

    select
        customer_id,
        occurred_at as touched_at,
        case event_type when 'message_clicked' then 'click' else 'open' end as touch,
        {{ flowhouse.json_text('properties', 'message_id') }} as message_id
    from {{ ref('stg_events') }}
    where {{ flowhouse.event_types_in('event_type', ['message_opened', 'message_clicked']) }}
        and customer_id in (select customer_id from orders)

),

touches as (

    select
        engagement.customer_id,
        engagement.touched_at,
        engagement.touch,
        messages.message_id,
        messages.flow_id,
        messages.step_id,
        messages.variant,
        messages.channel,
        windows.window_hours
    from engagement
    inner join messages on messages.message_id = engagement.message_id
    inner join windows on windows.touch_key = messages.channel || '_' || engagement.touch

),

candidates as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_value,
        touches.message_id,
        touches.flow_id,
        touches.step_id,
        touches.variant,
        touches.channel,
        touches.touch,
        touches.touched_at,
        touches.window_hours,
        row_number() over (
            partition by orders.order_id
            order by touches.touched_at desc, case touches.touch when 'click' then 0 else 1 end,
                touches.message_id
        ) as recency
    from orders
    inner join touches
        on touches.customer_id = orders.customer_id
        and touches.touched_at <= orders.ordered_at
        and orders.ordered_at <= touches.touched_at + touches.window_hours * interval '1 hour'

),

final as (

    select
        order_id,
        customer_id,
        ordered_at,
        order_value,
        message_id,
        flow_id,
        step_id,
        variant,
        channel,
        touch,
        touched_at,
        window_hours,
        {{ flowhouse.marts_watermarks() }}
    from candidates
    where recency = 1

)

select * from final
