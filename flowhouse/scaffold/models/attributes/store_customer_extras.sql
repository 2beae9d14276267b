{#- Attributes of the store's own, one row per customer: every column but customer_id becomes
    customer.<column> in flows (listed in the var flowhouse_attribute_models; document each column
    with its data_type in the .yml so that `flowhouse validate` knows it). -#}
select
    cast(id as {{ dbt.type_string() }}) as customer_id,
    coalesce(tags, '') like '%wholesale%' as store_is_wholesale,
    nullif(tags, '') as store_tags
from {{ source('shop', 'customers') }}
