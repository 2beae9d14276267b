{{ config(enabled=flowhouse.derived_is_enabled('segment_exited')) }}

with

memberships as (

    select * from {{ ref('segment_membership_history') }}

),

final as (

    select
        {{ flowhouse.derived_event_id('segment_exited', ['customer_id', 'segment', 'exited_at']) }}
            as event_id,
        customer_id,
        cast('segment_exited' as {{ dbt.type_string() }}) as event_type,
        exited_at as occurred_at,
        exited_at as loaded_at,
        {{ flowhouse.json_object_of({'segment': 'segment'}) }} as properties
    from memberships
    where exited_at is not null

)

select * from final
