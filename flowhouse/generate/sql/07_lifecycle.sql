-- Customer lifecycle: sign-ups inside the store's windows (customer_created, opt-ins, newsletter and
-- wholesale lists), later opt-ins and unsubscribes, WhatsApp and Viber opt-ins and unsubscribes, push
-- turned off, leaving the newsletter, and support tickets that are not about an order. Nothing before the store's first window becomes an event.

insert into gen_events
with

signed_up as (

    select *
    from gen_customers
    where created_us >= getvariable('store_start_us')

),

created as (

    select
        customer_id || '.cc' as event_id,
        customer_num,
        'customer_created' as event_type,
        created_us as occurred_us,
        json_object('source', signup_source, 'wholesale', is_wholesale) as properties
    from signed_up

),

email_opt_ins as (

    select
        customer_id || '.oe',
        customer_num,
        'opted_in',
        created_us + floor(1000000 * (5 + 55 * u1(customer_num, 'opt_in_delay')))::bigint,
        json_object('channel', 'email')
    from signed_up
    where is_email_opt_in_at_signup

),

sms_opt_ins as (

    select
        customer_id || '.os',
        customer_num,
        'opted_in',
        created_us + floor(1000000 * (60 + 540 * u1(customer_num, 'sms_delay')))::bigint,
        json_object('channel', 'sms')
    from signed_up
    where is_sms_opt_in_at_signup

),

newsletter_joins as (

    select
        customer_id || '.jn',
        customer_num,
        'list_joined',
        created_us + floor(1000000 * (70 + 30 * u1(customer_num, 'list_delay')))::bigint,
        json_object('list', 'newsletter')
    from signed_up
    where is_newsletter_at_signup

),

wholesale_joins as (

    select
        customer_id || '.jw',
        customer_num,
        'list_joined',
        created_us + minutes_us(2 + 8 * u1(customer_num, 'wholesale_delay')),
        json_object('list', 'wholesale')
    from signed_up
    where is_wholesale

),

later_email_opt_ins as (

    select
        customer_id || '.le',
        customer_num,
        'opted_in',
        late_email_opt_in_us,
        json_object('channel', 'email')
    from gen_customers
    where late_email_opt_in_us >= getvariable('store_start_us')

),

later_newsletter_joins as (

    select
        customer_id || '.ln',
        customer_num,
        'list_joined',
        late_email_opt_in_us + 60000000,
        json_object('list', 'newsletter')
    from gen_customers
    where late_email_opt_in_us >= getvariable('store_start_us')
        and u1(customer_num, 'late_newsletter') < 0.5

),

later_sms_opt_ins as (

    select
        customer_id || '.ls',
        customer_num,
        'opted_in',
        late_sms_opt_in_us,
        json_object('channel', 'sms')
    from gen_customers
    where late_sms_opt_in_us >= getvariable('store_start_us')

),

unsubscribes as (

    select
        customer_id || '.un',
        customer_num,
        'unsubscribed',
        unsubscribed_us,
        json_object('channel', unsubscribe_channel)
    from gen_customers
    where unsubscribed_us >= getvariable('store_start_us')

),

newsletter_leaves as (

    select
        customer_id || '.ll',
        customer_num,
        'list_left',
        newsletter_left_us,
        json_object('list', 'newsletter')
    from gen_customers
    where newsletter_left_us >= getvariable('store_start_us')
        and (is_newsletter_at_signup or late_email_opt_in_us < newsletter_left_us)

),

whatsapp_opt_ins as (

    select
        customer_id || '.ow',
        customer_num,
        'opted_in',
        whatsapp_opt_in_us,
        json_object('channel', 'whatsapp')
    from gen_customers
    where whatsapp_opt_in_us >= getvariable('store_start_us')

),

viber_opt_ins as (

    select
        customer_id || '.ov',
        customer_num,
        'opted_in',
        viber_opt_in_us,
        json_object('channel', 'viber')
    from gen_customers
    where viber_opt_in_us >= getvariable('store_start_us')

),

chat_unsubscribes as (

    select
        customer_id || '.uc',
        customer_num,
        'unsubscribed',
        case when leaves_whatsapp then whatsapp_opt_in_us else viber_opt_in_us end
            + chat_unsubscribe_after_us,
        json_object('channel', case when leaves_whatsapp then 'whatsapp' else 'viber' end)
    from (
        select
            *,
            whatsapp_opt_in_us is not null
                and (viber_opt_in_us is null or prefers_leaving_whatsapp) as leaves_whatsapp
        from gen_customers
        where leaves_chat and (whatsapp_opt_in_us is not null or viber_opt_in_us is not null)
    ) as chat

),

push_unsubscribes as (

    select
        customer_id || '.up',
        customer_num,
        'unsubscribed',
        push_unsubscribed_us,
        json_object('channel', 'push')
    from gen_customers
    where has_device_token and push_unsubscribed_us >= getvariable('store_start_us')

),

tickets_opened as (

    select
        customer_id || '.to',
        customer_num,
        'support_ticket_opened',
        ticket_us,
        json_object(
            'ticket_id', 't' || substr(customer_id, 2),
            'topic', ['account', 'product_question', 'billing', 'shipping_policy'][
                1 + floor(4 * u1(customer_num, 'ticket_topic'))::integer
            ],
            'order_id', null::varchar
        )
    from gen_customers
    where ticket_us >= getvariable('store_start_us')

),

tickets_closed as (

    select
        customer_id || '.tc',
        customer_num,
        'support_ticket_closed',
        ticket_us + hours_us(1 + 71 * u1(customer_num, 'ticket_close')),
        json_object('ticket_id', 't' || substr(customer_id, 2))
    from gen_customers
    where ticket_us >= getvariable('store_start_us')
        and u1(customer_num, 'ticket_closed') < 0.85

),

all_events as (

    select * from created
    union all select * from email_opt_ins
    union all select * from sms_opt_ins
    union all select * from newsletter_joins
    union all select * from wholesale_joins
    union all select * from later_email_opt_ins
    union all select * from later_newsletter_joins
    union all select * from later_sms_opt_ins
    union all select * from unsubscribes
    union all select * from newsletter_leaves
    union all select * from whatsapp_opt_ins
    union all select * from viber_opt_ins
    union all select * from chat_unsubscribes
    union all select * from push_unsubscribes
    union all select * from tickets_opened
    union all select * from tickets_closed

),

loaded as (

    select *, occurred_us + latency_us(event_id) as loaded_us
    from all_events
    where occurred_us < getvariable('win_end_us')

)

select event_id, customer_num, event_type, occurred_us, loaded_us, properties
from loaded
where loaded_us >= getvariable('load_from_us') and loaded_us < getvariable('win_end_us');

drop table gen_customers;
