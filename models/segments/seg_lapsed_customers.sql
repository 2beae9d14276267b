select customer_id
from {{ ref('customer_attributes') }}
where has_ordered
    and recency_days >= {{ var('lapsed_after_days') }}
