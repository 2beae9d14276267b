with

source as (

    select * from {{ flowhouse.input('device_tokens') }}

),

cleaned as (

    select
        trim(customer_id) as customer_id,
        trim(token) as token,
        lower(trim(platform)) as platform,
        created_at,
        revoked_at
    from source
    where nullif(trim(token), '') is not null
        and nullif(trim(customer_id), '') is not null
        and lower(trim(platform)) in ('ios', 'android', 'web')

),

ranked as (

    select
        *,
        row_number() over (partition by token order by created_at desc, customer_id) as n
    from cleaned

),

final as (

    select
        customer_id,
        token,
        platform,
        created_at,
        revoked_at,
        revoked_at is not null as is_revoked
    from ranked
    where n = 1

)

select * from final
