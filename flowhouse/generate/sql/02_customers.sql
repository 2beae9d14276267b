-- Every customer of the store so far (1 .. n_total), with the attributes later steps draw on. Customers
-- 1 .. n_pre existed before the store's first window (created over the two years before it, more of
-- them recently); the others were created inside a generated window, spread evenly over it.

create or replace temp table gen_customers as
with

numbers as (

    select range as customer_num
    from range(1, getvariable('n_total') + 1)

),

created as (

    select
        n.customer_num,
        case
            when n.customer_num <= getvariable('n_pre') then least(
                getvariable('store_start_us') - days_us(730 * pow(
                    1 - (n.customer_num - 0.5) / getvariable('n_pre'), 0.7
                )) + hours_us(3 * u1(n.customer_num, 'created_jitter')),
                getvariable('store_start_us') - 60000000
            )
            else r.window_start_us + floor(
                (r.window_end_us - r.window_start_us)
                * (n.customer_num - r.first_customer + u1(n.customer_num, 'created_jitter'))
                / (r.last_customer - r.first_customer + 1)
            )::bigint
        end as created_us
    from numbers as n
    asof left join gen_runs as r on n.customer_num >= r.first_customer

),

drawn as (

    select
        customer_num,
        created_us,
        pick(getvariable('zone_slots'), u1(customer_num, 'zone')) as zone_idx,
        getvariable('first_names')[
            1 + floor(u1(customer_num, 'name') * len(getvariable('first_names')))::integer
        ] as first_name,
        u1(customer_num, 'email') >= 0.06 as has_email,
        u1(customer_num, 'phone') >= 0.35 as has_phone,
        u1(customer_num, 'wholesale') < 0.03 as is_wholesale,
        u1(customer_num, 'activity') as u_activity,
        u1(customer_num, 'consent') as u_consent,
        u1(customer_num, 'sms_consent') as u_sms,
        u1(customer_num, 'unsubscribe') as u_unsubscribe,
        pick(getvariable('category_slots'), u1(customer_num, 'favourite_category'))
            as favourite_category,
        u1(customer_num, 'favourite_rank') as u_favourite_rank
    from created

),

final as (

    select
        d.customer_num,
        customer_key(d.customer_num) as customer_id,
        d.created_us,
        d.zone_idx,
        z.timezone,
        z.conversion_zone,
        z.std_offset_min,
        z.country,
        d.first_name,
        case
            when d.has_email then
                lower(strip_accents(d.first_name)) || '.'
                || chr(97 + floor(u1(d.customer_num, 'initial') * 26)::integer)
                || d.customer_num::varchar || '@'
                || ['example.com', 'example.net', 'example.org'][
                    1 + floor(u1(d.customer_num, 'domain') * 3)::integer
                ]
        end as email,
        case
            when d.has_phone then
                '+' || z.calling_code
                || (2 + floor(u1(d.customer_num, 'phone_lead') * 8)::integer)::varchar
                || lpad(
                    (h1(d.customer_num, 'phone_digits')
                        % (10 ** (z.number_digits - 1))::ubigint)::varchar,
                    z.number_digits - 1, '0'
                )
        end as phone,
        case
            when u1(d.customer_num, 'birthday') < 0.22 then null
            when u1(d.customer_num, 'birthday') < 0.226 then make_date(
                (1960 + 4 * floor(u1(d.customer_num, 'leap_year') * 11))::integer, 2, 29
            )
            else date '1950-01-01' + floor(u1(d.customer_num, 'birth_day') * 20800)::integer
        end as birthday,
        d.has_email and d.u_consent < 0.62 as is_email_opt_in_at_signup,
        d.has_phone and d.u_sms < 0.30 as is_sms_opt_in_at_signup,
        d.is_wholesale,
        case
            when u1(d.customer_num, 'channel') < 0.30 then 'organic'
            when u1(d.customer_num, 'channel') < 0.50 then 'paid_search'
            when u1(d.customer_num, 'channel') < 0.68 then 'social'
            when u1(d.customer_num, 'channel') < 0.76 then 'email'
            when u1(d.customer_num, 'channel') < 0.86 then 'referral'
            when u1(d.customer_num, 'channel') < 0.92 then 'affiliate'
            else 'retail'
        end as acquisition_channel,
        case
            when u1(d.customer_num, 'points') < 0.4 then 0
            else floor(pow(u1(d.customer_num, 'points_amount'), 2) * 5000)::integer
        end as loyalty_points,
        case
            when u1(d.customer_num, 'source') < 0.80 then 'web'
            when u1(d.customer_num, 'source') < 0.92 then 'pos'
            else 'import'
        end as signup_source,
        -- sessions a week: 30 % never come back (win-back material), the rest from rare to daily
        case
            when d.u_activity < 0.30 then 0.0
            else 0.08 + 1.6 * pow(u1(d.customer_num, 'activity_level'), 3)
        end as sessions_per_week,
        d.favourite_category + 12 * floor(
            getvariable('skus_per_category') * pow(d.u_favourite_rank, 2)
        )::integer as favourite_sku_num,
        case
            when d.created_us >= getvariable('store_start_us') then 0
            when u1(d.customer_num, 'buyer') < 0.45 then 0
            else least(60, 1 + floor(
                -ln(1 - u1(d.customer_num, 'orders'))
                * case when d.is_wholesale then 4.0 else 1.6 end
            ))::integer
        end as prior_orders,
        -- consent changes after sign-up (the store keeps them as events; the row shows the state
        -- when it was written)
        case
            when d.has_email and d.u_consent >= 0.62 and u1(d.customer_num, 'late_email') < 0.25
                then d.created_us + days_us(700 * u1(d.customer_num, 'late_email_at'))
        end as late_email_opt_in_us,
        case
            when d.has_phone and d.u_sms >= 0.30 and u1(d.customer_num, 'late_sms') < 0.15
                then d.created_us + days_us(700 * u1(d.customer_num, 'late_sms_at'))
        end as late_sms_opt_in_us,
        case
            when ((d.has_email and d.u_consent < 0.62) or (d.has_phone and d.u_sms < 0.30))
                and d.u_unsubscribe < 0.25
                then d.created_us + days_us(1 + 700 * u1(d.customer_num, 'unsubscribe_at'))
        end as unsubscribed_us,
        case
            when not (d.has_email and d.u_consent < 0.62) then 'sms'
            when not (d.has_phone and d.u_sms < 0.30) then
                case when u1(d.customer_num, 'unsubscribe_channel') < 0.8 then 'email' else 'all' end
            when u1(d.customer_num, 'unsubscribe_channel') < 0.55 then 'email'
            when u1(d.customer_num, 'unsubscribe_channel') < 0.80 then 'sms'
            else 'all'
        end as unsubscribe_channel,
        d.has_email and d.u_consent < 0.62 and u1(d.customer_num, 'newsletter') < 0.6
            as is_newsletter_at_signup,
        case
            when u1(d.customer_num, 'newsletter_left') < 0.2
                then d.created_us + days_us(2 + 700 * u1(d.customer_num, 'newsletter_left_at'))
        end as newsletter_left_us,
        case
            when u1(d.customer_num, 'ticket') < 0.04
                then d.created_us + days_us(700 * u1(d.customer_num, 'ticket_at'))
        end as ticket_us,
        -- WhatsApp and Viber need an opt-in of their own (SMS consent does not count): customers with
        -- a phone give it at sign-up, or, signed up before the store's first window, answer the
        -- store's invitation in its first two weeks
        case
            when d.has_phone and u1(d.customer_num, 'whatsapp') < 0.35 then chat_opt_in_us(
                d.created_us, u1(d.customer_num, 'whatsapp_at')
            )
        end as whatsapp_opt_in_us,
        case
            when d.has_phone and u1(d.customer_num, 'viber') < 0.25 then chat_opt_in_us(
                d.created_us, u1(d.customer_num, 'viber_at')
            )
        end as viber_opt_in_us,
        -- one in five of them leaves one of the two (WhatsApp where they have both, half the time)
        u1(d.customer_num, 'chat_unsubscribe') < 0.2 as leaves_chat,
        u1(d.customer_num, 'chat_unsubscribe_channel') < 0.5 as prefers_leaving_whatsapp,
        days_us(1 + 13 * u1(d.customer_num, 'chat_unsubscribe_at')) as chat_unsubscribe_after_us,
        -- push: the customers with a device token (gen_device_token_rows draws the same), one in
        -- eight of whom turns the store's notifications off in the app later
        u1(d.customer_num, 'push') < 0.35 as has_device_token,
        case
            when u1(d.customer_num, 'push_off') < 0.125 then greatest(
                d.created_us + hours_us(50), getvariable('store_start_us')
            ) + days_us(14 * u1(d.customer_num, 'push_off_at'))
        end as push_unsubscribed_us
    from drawn as d
    inner join gen_zones as z on d.zone_idx = z.zone_idx

)

select * from final;

-- The rows of raw.customers this run writes: its new customers (all of them on the first run), in
-- their state at the end of the window.
create or replace temp table gen_customer_rows as
with

rows as (

    select
        *,
        getvariable('win_end_us') as as_of_us,
        case when unsubscribe_channel in ('email', 'all') then unsubscribed_us end
            as email_unsubscribed_us,
        case when unsubscribe_channel in ('sms', 'all') then unsubscribed_us end
            as sms_unsubscribed_us
    from gen_customers
    where customer_num >= getvariable('first_row_customer')

),

final as (

    select
        customer_id,
        email,
        phone,
        first_name,
        make_timestamp(created_us) as created_at,
        timezone,
        country,
        birthday,
        case
            when email_unsubscribed_us <= as_of_us and coalesce(
                late_email_opt_in_us not between email_unsubscribed_us and as_of_us, true
            ) then false
            else is_email_opt_in_at_signup or coalesce(late_email_opt_in_us <= as_of_us, false)
        end as email_opt_in,
        case
            when sms_unsubscribed_us <= as_of_us and coalesce(
                late_sms_opt_in_us not between sms_unsubscribed_us and as_of_us, true
            ) then false
            else is_sms_opt_in_at_signup or coalesce(late_sms_opt_in_us <= as_of_us, false)
        end as sms_opt_in,
        json_object(
            'wholesale', is_wholesale,
            'acquisition_channel', acquisition_channel,
            'loyalty_points', loyalty_points
        ) as properties,
        make_timestamp(greatest(
            created_us,
            case when late_email_opt_in_us <= as_of_us then late_email_opt_in_us end,
            case when late_sms_opt_in_us <= as_of_us then late_sms_opt_in_us end,
            case when unsubscribed_us <= as_of_us then unsubscribed_us end
        )) as updated_at
    from rows

)

select * from final;

-- Device tokens for native push: about a third of the run's new customers installed the app or allowed
-- web push, a few hours after signing up (never after the run's window). One token in twenty is stale:
-- the fake provider answers tokens starting `unregistered-` as FCM does an uninstalled app.
create or replace temp table gen_device_token_rows as
select
    c.customer_id,
    case when u1(c.customer_num, 'token_stale') < 0.05 then 'unregistered-' else '' end
        || 'fcm-' || md5(c.customer_id || ':' || cast(getvariable('seed') as varchar)) as token,
    ['ios', 'android', 'web'][1 + floor(u1(c.customer_num, 'platform') * 3)::integer] as platform,
    make_timestamp(least(
        c.created_us + hours_us(1 + 48 * u1(c.customer_num, 'token_delay')),
        getvariable('win_end_us')
    )) as created_at,
    cast(null as timestamp) as revoked_at
from gen_customers as c
where c.customer_num >= getvariable('first_row_customer')
    and c.has_device_token
order by c.customer_id;
