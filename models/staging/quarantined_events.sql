{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook=[
            "create table if not exists {{ this.schema }}.quarantined_events_checked
                (checked_through timestamp)",
            "create table if not exists {{ this.schema }}.quarantined_events_checking
                (checking_through timestamp)",
            "delete from {{ this.schema }}.quarantined_events_checking",
            "insert into {{ this.schema }}.quarantined_events_checking
                select max(loaded_at) from {{ flowhouse.input('events') }}
                where loaded_at >= {{ flowhouse.quarantine_since() }}",
        ],
        post_hook=[
            "delete from {{ this.schema }}.quarantined_events_checked",
            "insert into {{ this.schema }}.quarantined_events_checked
                select checking_through from {{ this.schema }}.quarantined_events_checking",
        ],
    )
}}

{#- Rows of raw.events that break the event contract (flowhouse/core/contract.py, docs/events.md): one row
    per problem, and stg_events leaves the event out. A row can reach raw.events by any path (an ELT tool
    writing directly), so none is trusted to be well-formed: a property the contract types as a number,
    timestamp, boolean, list or object that holds something else ("12,50", "next tuesday"), properties
    that are not a JSON object, a missing type or time. Text properties take any value.
    Set-based, and incremental by what changed: each build checks the rows loaded at or after the newest
    loaded_at the previous build saw (a timestamp literal, so the scan prunes on loaded_at; `>=`: a row
    loaded in that same instant is read again, and one already quarantined is not written twice), and
    the rows without a loaded_at. The mark is taken by a pre-hook, before the rows are read, into
    quarantined_events_checking, and moved to quarantined_events_checked by the post-hook once the build
    succeeded: a row committed during the build carries a loaded_at at or after the mark (the
    assumption of macros/incremental.sql), so the next build reads it. -#}

{%- set checked = flowhouse.quarantine_since() %}

with

events as (

    select
        event_id,
        event_type,
        occurred_at,
        loaded_at,
        properties,
        {{ flowhouse.json_kind('properties') }} as properties_kind
    from {{ flowhouse.input('events') }}
    where loaded_at >= {{ checked }}

    union all

    select
        event_id,
        event_type,
        occurred_at,
        loaded_at,
        properties,
        {{ flowhouse.json_kind('properties') }} as properties_kind
    from {{ flowhouse.input('events') }}
    where loaded_at is null

),

rules as (

    select * from {{ flowhouse.event_property_rules_relation() }} as contract_rules

),

values_read as (

    select
        events.event_id,
        events.event_type,
        events.loaded_at,
        rules.property,
        rules.property_type,
        {{ flowhouse.json_kind_at('events.properties', 'rules.property') }} as value_kind,
        {{ flowhouse.json_text_at('events.properties', 'rules.property') }} as value_text
    from events
    inner join rules
        on events.event_type = rules.event_type
    where events.properties_kind = 'object'

),

bad_values as (

    select
        event_id,
        event_type,
        loaded_at,
        property as field,
        value_text as value,
        'expected ' || case property_type
            when 'number' then 'a number below {{ flowhouse.safe_number_limit() }}'
            when 'timestamp' then 'an ISO 8601 timestamp'
            when 'boolean' then 'true or false'
            when 'list' then 'a JSON array'
            when 'object' then 'a JSON object'
        end || ' for ' || event_type || '.' || property as reason
    from values_read
    where value_kind is not null
        and value_kind <> 'null'
        and not (
            (property_type = 'number' and value_kind in ('number', 'string')
                and {{ flowhouse.safe_number('value_text') }} is not null)
            or (property_type = 'timestamp' and value_kind = 'string'
                and {{ flowhouse.safe_timestamp('value_text') }} is not null)
            or (property_type = 'boolean' and (value_kind = 'boolean'
                or (value_kind = 'string' and lower(value_text) in ('true', 'false'))))
            or (property_type = 'list' and value_kind = 'array')
            or (property_type = 'object' and value_kind = 'object')
        )

),

bad_rows as (

    select
        event_id,
        event_type,
        loaded_at,
        'properties' as field,
        cast(properties as {{ dbt.type_string() }}) as value,
        'properties is not a JSON object (a JSON ' || properties_kind || ')' as reason
    from events
    where properties_kind <> 'object'

    union all

    select event_id, event_type, loaded_at, 'event_type', null, 'event_type is missing'
    from events
    where event_type is null

    union all

    select event_id, event_type, loaded_at, 'occurred_at', null, 'occurred_at is missing'
    from events
    where occurred_at is null

    union all

    select event_id, event_type, loaded_at, 'loaded_at', null, 'loaded_at is missing'
    from events
    where loaded_at is null

),

problems as (

    select * from bad_values
    union all
    select * from bad_rows

),

final as (

    select
        cast('events' as {{ dbt.type_string() }}) as input,
        problems.event_id,
        problems.event_type,
        cast(problems.field as {{ dbt.type_string() }}) as field,
        cast(left(problems.value, 200) as {{ dbt.type_string() }}) as value,
        cast(problems.reason as {{ dbt.type_string() }}) as reason,
        problems.loaded_at,
        {{ flowhouse.flowhouse_now() }} as quarantined_at
    from problems
    {%- if is_incremental() %}
    where not exists (
        -- an event read again (loaded in the instant of the mark) is quarantined once
        select 1 from {{ this }} as known
        where known.event_id = problems.event_id and known.field = problems.field
            and (known.loaded_at >= {{ checked }} or known.loaded_at is null)
    )
    {%- endif %}

)

select * from final
