select customer_id
from {{ ref('customer_attributes') }}
where order_count >= {{ var('discount_sensitive_min_orders') }}
    and discount_sensitivity >= {{ var('discount_sensitive_min_share') }}
