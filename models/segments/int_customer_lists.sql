{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}"
    )
}}

{#- Each customer's state in every list they have an event of, as of the build's now: the latest
    `list_joined` / `list_left` event per customer and list wins (leaving wins a tie at the same
    instant); list_members (a view) keeps the lists a customer is in. Incremental by what changed
    (macros/incremental.sql): a build recomputes the customers with a list event loaded since its
    last one, or whose time the build's now passed, from all of their list events. A customer with a
    list event always keeps a row (a list left is a row too), so the delete by customer_id of
    delete+insert also removes a list the customer left. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}
{%- set list_events = "event_type in ('list_joined', 'list_left') and customer_id is not null" %}

with

changed as (

    {{ flowhouse.changed_keys('customer_id', [{
        'relation': ref('stg_events'), 'loaded': 'loaded_at',
        'times': ['occurred_at', 'loaded_at'], 'where': list_events,
    }], marks) }}

),

events as (

    -- the list events known at the build's now (of the changed customers, when incremental)
    {{ flowhouse.rows_of_changed_keys(
        ref('stg_events'), 'customer_id', 'changed', marks, list_events,
        known=['occurred_at', 'loaded_at']
    ) }}

),

list_events as (

    select
        event_id,
        customer_id,
        lower(trim({{ flowhouse.json_text('properties', 'list') }})) as list_name,
        event_type,
        occurred_at
    from events

),

latest as (

    -- the latest event per customer and list wins; at the same instant, leaving wins
    select
        *,
        row_number() over (
            partition by customer_id, list_name
            order by occurred_at desc, case when event_type = 'list_left' then 0 else 1 end, event_id desc
        ) as recency_rank
    from list_events
    where list_name is not null and list_name <> ''

),

final as (

    select
        customer_id,
        list_name,
        event_type = 'list_joined' as is_member,
        occurred_at as changed_at,
        case when event_type = 'list_joined' then occurred_at end as joined_at,
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through
    from latest
    where recency_rank = 1

)

select * from final
