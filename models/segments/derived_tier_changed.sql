{{ config(enabled=flowhouse.derived_is_enabled('tier_changed')) }}

with

tier_periods as (

    select * from {{ ref('customer_tier_history') }}

),

final as (

    -- every period whose tier differs from the one before it (a first period counts as a change when
    -- it is not the tier a customer without revenue starts in)
    select
        {{ flowhouse.derived_event_id('tier_changed', ['customer_id', 'tier', 'valid_from']) }}
            as event_id,
        customer_id,
        cast('tier_changed' as {{ dbt.type_string() }}) as event_type,
        valid_from as occurred_at,
        valid_from as loaded_at,
        {{ flowhouse.json_object_of({'from_tier': 'previous_tier', 'to_tier': 'tier'}) }}
            as properties
    from tier_periods
    where tier is distinct from previous_tier

)

select * from final
