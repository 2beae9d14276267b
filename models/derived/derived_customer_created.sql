{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('customer_created'),
    )
}}

{#- A customer first seen in raw.customers, however they were added (a file, an ELT sync, the API), once per
    customer: Maestra's "New customer" trigger. raw.customers keeps only each customer's latest row, so the
    first appearance is observed: a build records the customers it sees that this model does not hold yet,
    with loaded_at = the build's now (when flowhouse learned of them) and occurred_at = the customer's
    created_at (never after that now). An import that only updates a known customer adds nothing. A
    customer for whom the store sent its own customer_created (raw.events, loaded by now) gets none: the
    raw one wins. Observations only move forward, as in segment_membership_history: a build whose now is
    not later than the newest recorded one records nothing, so re-running a build changes nothing and no
    event is ever recorded before a tick that has already looked past it. Customers created before a flow
    went live are refused by the engine as `before_live` (unless the flow sets past_triggers). -#}

with

customers as (

    select customer_id, created_at, is_wholesale from {{ ref('stg_customers') }}

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

unrecorded as (

    -- the customers this model holds no event for (an incremental build reads the stream only for them)
    select customers.*
    from customers
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as known where known.customer_id = customers.customer_id
    )
    {%- endif %}

),

sent_raw as (

    select events.customer_id
    from {{ ref('stg_events') }} as events
    cross join observation
    where events.event_type = 'customer_created'
        and events.customer_id in (select customer_id from unrecorded)
        and events.loaded_at <= observation.observed_at

),

new_customers as (

    select unrecorded.*
    from unrecorded
    where not exists (
        select 1 from sent_raw where sent_raw.customer_id = unrecorded.customer_id
    )

),

derived as (

    select
        {{ flowhouse.derived_event_id('customer_created', ['new_customers.customer_id']) }} as event_id,
        new_customers.customer_id,
        cast('customer_created' as {{ dbt.type_string() }}) as event_type,
        least(
            coalesce(new_customers.created_at, observation.observed_at), observation.observed_at
        ) as occurred_at,
        observation.observed_at as loaded_at,
        {{ flowhouse.json_object_of({
            'source': "'import'",
            'wholesale': 'new_customers.is_wholesale',
        }) }} as properties
    from new_customers
    cross join observation
    cross join last_recorded
    where last_recorded.recorded_at is null
        or observation.observed_at > last_recorded.recorded_at

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
