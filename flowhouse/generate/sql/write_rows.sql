-- The run's customers and their device tokens (appended) and the catalog's current state (the caller
-- emptied raw.products).
insert into raw.customers
select
    customer_id, email, phone, first_name, created_at, timezone, country, birthday,
    email_opt_in, sms_opt_in, properties, updated_at
from gen_customer_rows
order by customer_id;

insert into raw.products
select sku, name, url, image_url, category, price, cost, inventory_qty, updated_at
from gen_product_rows
order by sku;

insert into raw.device_tokens
select customer_id, token, platform, created_at, revoked_at
from gen_device_token_rows
order by token;

drop table gen_customer_rows;

drop table gen_product_rows;

drop table gen_device_token_rows;
