select customer_id
from {{ ref('customer_attributes') }}
where tier = 'vip'
