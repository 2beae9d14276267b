{#- A segment of the store's own: customers with at least two orders. A segment is a model whose
    config has meta.segment (see the .yml); flows name it as `audience: {segment: repeat_buyers}`.
    It may read flowhouse's models (customer_attributes, stg_customers, stg_events, list_members);
    list any model of the store's it reads in the var flowhouse_segment_inputs. -#}
select customer_id
from {{ ref('customer_attributes') }}
where order_count >= 2
