select customer_id
from {{ ref('customer_attributes') }}
where not has_ordered
    and days_since_last_activity <= {{ var('engaged_within_days') }}
