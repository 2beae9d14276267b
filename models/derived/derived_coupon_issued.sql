{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('coupon_issued'),
    )
}}

{#- A coupon code issued to a customer (UltraCart's "Shared Coupon" trigger): one event per code the engine
    assigned from a pool (flowhouse.coupon_codes: a `coupon` action or a send with coupon_pool), whichever
    flow issued it. occurred_at is the code's issued_at (the step's due time); loaded_at is the build's now
    that first saw it (the tick that issued it ran before that build). Observations only move forward, as
    in derived_customer_created: a build whose now is not later than the newest recorded one records
    nothing, so re-running a build changes nothing. Codes of erased customers (their customer_id
    anonymised by flowhouse erase) give no event; events already derived for them are removed with
    the other derived rows. -#}

with

issued as (

    select pool, code, customer_id, message_id, issued_at, expires_at
    from {{ source('flowhouse', 'coupon_codes') }}
    where customer_id is not null and issued_at is not null
        -- codes of erased customers (flowhouse erase anonymises them) are no one's to announce
        and customer_id not like 'erased:%'

),

observation as (

    select {{ flowhouse.flowhouse_now() }} as observed_at

),

last_recorded as (

    {%- if is_incremental() %}
    select max(loaded_at) as recorded_at from {{ this }}
    {%- else %}
    select cast(null as timestamp) as recorded_at
    {%- endif %}

),

derived as (

    select
        {{ flowhouse.derived_event_id('coupon_issued', ['issued.pool', 'issued.code', 'issued.customer_id']) }}
            as event_id,
        issued.customer_id,
        cast('coupon_issued' as {{ dbt.type_string() }}) as event_type,
        issued.issued_at as occurred_at,
        observation.observed_at as loaded_at,
        {{ flowhouse.json_object_of({
            'pool': 'issued.pool',
            'code': 'issued.code',
            'message_id': 'issued.message_id',
            'expires_at': flowhouse.derived_iso_timestamp('issued.expires_at'),
        }) }} as properties
    from issued
    cross join observation
    cross join last_recorded
    where issued.issued_at <= observation.observed_at
        and (last_recorded.recorded_at is null or observation.observed_at > last_recorded.recorded_at)

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
