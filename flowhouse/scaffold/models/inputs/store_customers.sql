{#- The store's customers as flowhouse's canonical customers (docs/events.md, raw.customers). -#}
select
    cast(id as {{ dbt.type_string() }}) as customer_id,
    email,
    phone,
    first_name,
    cast(created_at as timestamp) as created_at,
    cast(null as {{ dbt.type_string() }}) as timezone,
    country_code as country,
    cast(null as date) as birthday,
    accepts_email_marketing as email_opt_in,
    accepts_sms_marketing as sms_opt_in,
    {{ flowhouse.json_object_of({'tags': 'tags'}) }} as properties,
    cast(updated_at as timestamp) as updated_at
from {{ source('shop', 'customers') }}
