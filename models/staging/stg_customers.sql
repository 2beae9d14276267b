with

source as (

    select * from {{ flowhouse.input('customers') }}

),

zones as (

    select * from {{ flowhouse.timezone_names() }} as zone_names

),

renamed as (

    select
        source.customer_id,
        nullif(lower(trim(source.email)), '') as email,
        nullif(trim(source.phone), '') as phone,
        nullif(trim(source.first_name), '') as first_name,
        source.created_at,
        nullif(trim(source.timezone), '') as timezone,
        zones.name as valid_timezone,
        upper(nullif(trim(source.country), '')) as country,
        source.birthday,
        source.email_opt_in,
        source.sms_opt_in,
        source.properties,
        source.updated_at
    from source
    left join zones
        on lower(trim(source.timezone)) = zones.name_key

),

final as (

    select
        customer_id,
        email,
        phone,
        first_name,
        created_at,
        timezone,
        valid_timezone is not null as has_valid_timezone,
        coalesce(valid_timezone, '{{ var("store_timezone", "UTC") }}') as effective_timezone,
        country,
        birthday,
        coalesce(email_opt_in, false) as email_opt_in,
        coalesce(sms_opt_in, false) as sms_opt_in,
        coalesce(lower({{ flowhouse.json_text('properties', 'wholesale') }}) = 'true', false)
            as is_wholesale,
        properties,
        updated_at
    from renamed

)

select * from final
