select customer_id
from {{ ref('customer_attributes') }}
where is_wholesale

union

select customer_id
from {{ ref('list_members') }}
where list_name = 'wholesale'
