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
    (macros/incremental.sql): the latest event is a latest time, so a build reads only the list
    events that changed (loaded since its last build, or whose time its now passed) and keeps, per
    customer and list, the later of the row it had and theirs; it writes every list of the customers
    with a changed event (delete+insert by customer_id). A list left is a row too, so a customer
    never loses a list by having no row. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}

with

changed_events as (

    -- the list events known at the build's now (those that changed, when incremental)
    {{ flowhouse.changed_rows(
        ref('stg_events'), 'loaded_at', ['occurred_at', 'loaded_at'], marks,
        flowhouse.event_types_in('event_type', ['list_joined', 'list_left']) ~ " and customer_id is not null",
        known=['occurred_at', 'loaded_at']
    ) }}

),

list_events as (

    select
        event_id,
        customer_id,
        lower(trim({{ flowhouse.json_text('properties', 'list') }})) as list_name,
        event_type = 'list_joined' as is_member,
        occurred_at
    from changed_events

),

candidates as (

    select event_id, customer_id, list_name, is_member, occurred_at
    from list_events
    where list_name is not null and list_name <> ''
    {%- if marks %}
    union all
    -- every list of the customers with a changed event, as the table holds it
    select kept.event_id, kept.customer_id, kept.list_name, kept.is_member, kept.changed_at
    from {{ this }} as kept
    where kept.customer_id in (select customer_id from list_events)
    {%- endif %}

),

latest as (

    -- the latest event per customer and list wins; at the same instant, leaving wins
    select
        *,
        row_number() over (
            partition by customer_id, list_name
            order by occurred_at desc, case when is_member then 1 else 0 end, event_id desc
        ) as recency_rank
    from candidates

),

final as (

    select
        customer_id,
        list_name,
        is_member,
        occurred_at as changed_at,
        case when is_member then occurred_at end as joined_at,
        event_id,
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through
    from latest
    where recency_rank = 1

)

select * from final
