with

source as (

    select * from {{ flowhouse.input('events') }}

),

quarantined as (

    select event_id from {{ ref('quarantined_events') }}

),

final as (

    select
        source.event_id,
        source.customer_id,
        source.event_type,
        source.occurred_at,
        source.loaded_at,
        source.properties
    from source
    where not exists (
        select 1 from quarantined where quarantined.event_id = source.event_id
    )

)

select * from final
