{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}",
        post_hook=["{{ flowhouse.forget_push_customers_gone() }}"] + flowhouse.marks_post_hooks(),
    )
}}

{#- Per customer: the device tokens a push can use and push consent, and onsite opt-outs.

    A token is usable while the app has not revoked it and the push provider has not answered it dead
    (flowhouse.invalid_device_tokens). Push consent: an `unsubscribed` event with channel push (or all)
    withdraws it until a later `opted_in` with channel push; without either event, a usable token is the
    consent (the operating system asked the customer before the app could register it). Onsite needs no
    opt-in; an `unsubscribed` with channel onsite (or all), not followed by an `opted_in` with channel
    onsite, opts the customer out.

    Incremental by what changed (macros/incremental.sql). The consent columns are latest times: a build
    reads only the consent events that changed (loaded since its last build, or whose time its now
    passed) and keeps, per customer, the later of the row it had and theirs. The device tokens carry no
    load time and change in place (revoked_at, a token answered dead), so a build recomputes every
    customer's usable tokens from the tokens table (one pass, no event) and writes the customers whose
    newest token or token count differs from their row. A customer left with no usable token and no push
    or onsite consent event loses the row (the post-hook), as a full build would leave them none. -#}

{%- set marks = flowhouse.take_marks(ref('stg_consent_events')) %}
{%- set now = flowhouse.flowhouse_now() %}
{%- set times = [
    'last_push_opted_in_at', 'last_push_unsubscribed_at', 'last_onsite_opted_in_at',
    'last_onsite_unsubscribed_at', 'last_consent_event_at',
] %}

with

tokens as (

    select * from {{ ref('stg_device_tokens') }}

),

dead as (

    select distinct token from {{ source('flowhouse', 'invalid_device_tokens') }}

),

consent_events as (

    -- the consent events known at the build's now (those that changed, when incremental)
    {{ flowhouse.changed_rows(
        ref('stg_consent_events'), 'loaded_at', ['occurred_at', 'loaded_at'], marks,
        "channel in ('push', 'onsite', 'all')", known=['occurred_at', 'loaded_at']
    ) }}

),

usable as (

    select
        tokens.customer_id,
        tokens.token,
        tokens.platform,
        tokens.created_at,
        row_number() over (
            partition by tokens.customer_id order by tokens.created_at desc, tokens.token
        ) as newest
    from tokens
    left join dead on dead.token = tokens.token
    where dead.token is null
        and tokens.created_at <= {{ now }}
        and (tokens.revoked_at is null or tokens.revoked_at > {{ now }})

),

devices as (

    select
        customer_id,
        max(case when newest = 1 then token end) as push_token,
        count(*) as push_token_count
    from usable
    group by customer_id

),

consent_read as (

    select
        customer_id,
        max(case when is_opt_in and channel = 'push' then occurred_at end) as last_push_opted_in_at,
        max(case when not is_opt_in and channel in ('push', 'all') then occurred_at end)
            as last_push_unsubscribed_at,
        max(case when is_opt_in and channel = 'onsite' then occurred_at end)
            as last_onsite_opted_in_at,
        max(case when not is_opt_in and channel in ('onsite', 'all') then occurred_at end)
            as last_onsite_unsubscribed_at,
        max(occurred_at) as last_consent_event_at
    from consent_events
    group by customer_id

),

{%- if marks %}

kept as (

    select * from {{ this }}

),

device_changes as (

    -- the customers whose usable tokens differ from their row
    select coalesce(devices.customer_id, kept.customer_id) as customer_id
    from devices
    full outer join kept
        on devices.customer_id = kept.customer_id
    where kept.customer_id is null
        or devices.push_token is distinct from kept.push_token
        or coalesce(devices.push_token_count, 0) <> kept.push_token_count

),

customers as (

    select customer_id from consent_read
    union
    select customer_id from device_changes where customer_id is not null

),

consent as (

    -- per changed customer, the later of the row's times and the changed events'
    select
        customers.customer_id,
        {%- for column in times %}
        {{ flowhouse.later('consent_read.' ~ column, 'kept.' ~ column) }} as {{ column }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from customers
    left join consent_read on consent_read.customer_id = customers.customer_id
    left join kept on kept.customer_id = customers.customer_id

),

{%- else %}

consent as (

    select * from consent_read

),

customers as (

    select customer_id from devices
    union
    select customer_id from consent

),

{%- endif %}

final as (

    select
        customers.customer_id,
        devices.push_token,
        coalesce(devices.push_token_count, 0) as push_token_count,
        case
            when consent.last_push_unsubscribed_at is not null
                and (
                    consent.last_push_opted_in_at is null
                    or consent.last_push_unsubscribed_at >= consent.last_push_opted_in_at
                ) then false
            when consent.last_push_opted_in_at is not null then true
            else devices.push_token is not null
        end as has_push_consent,
        consent.last_push_opted_in_at is not null or devices.push_token is not null
            as has_push_opt_in,
        consent.last_push_unsubscribed_at as push_unsubscribed_at,
        case
            when consent.last_onsite_unsubscribed_at >= coalesce(
                consent.last_onsite_opted_in_at, consent.last_onsite_unsubscribed_at
            ) then consent.last_onsite_unsubscribed_at
        end as onsite_unsubscribed_at,
        {%- for column in times %}
        consent.{{ column }},
        {%- endfor %}
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_consent_events'), 'loaded_at', marks) }}
            as loaded_through
    from customers
    left join devices on devices.customer_id = customers.customer_id
    left join consent on consent.customer_id = customers.customer_id

)

select * from final
