with

source as (

    select * from {{ source('raw', 'events') }}

),

final as (

    select
        event_id,
        customer_id,
        event_type,
        occurred_at,
        loaded_at,
        properties
    from source

)

select * from final
