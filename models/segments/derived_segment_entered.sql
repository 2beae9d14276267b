{{ config(enabled=flowhouse.derived_is_enabled('segment_entered')) }}

with

memberships as (

    select * from {{ ref('segment_membership_history') }}

),

final as (

    select
        {{ flowhouse.derived_event_id('segment_entered', ['customer_id', 'segment', 'entered_at']) }}
            as event_id,
        customer_id,
        cast('segment_entered' as {{ dbt.type_string() }}) as event_type,
        entered_at as occurred_at,
        entered_at as loaded_at,
        {{ flowhouse.json_object_of({'segment': 'segment'}) }} as properties
    from memberships

)

select * from final
