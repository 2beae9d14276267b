{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}",
        post_hook="{{ flowhouse.forget_customers_gone() }}"
    )
}}

{#- One row per customer: what customer_attributes (a view over this table) shows, less the columns
    that move with now alone (the days since and predicted_ltv, which the view computes from the times
    stored here and the build's now). Incremental by what changed (macros/incremental.sql,
    docs/engine.md "Incremental models"): a build rewrites only
    - the customers whose row in an incremental input (orders, last activity, consent, suppression,
      category affinity) was written since its last build (refreshed_at after the last build's now,
      a literal: each input's own stamp, so an input refreshed by a separate build is picked up);
    - the customers whose own columns changed: the profile, device tokens, flow actions and
      subscriptions (tables rebuilt in full, so compared through inputs_fingerprint);
    - every row when the settings the columns read changed (settings_fingerprint);
    - the customers whose marketing pressure the window's edges moved: a delivery that left the last
      14 or 30 days between the last build's now and this one's (two ranges of literals);
    - the rows whose RFM scores the quintile bounds moved: the scores rank every buyer, so they come
      from the bounds (`rfm_bounds`, one row computed over every buyer's three measures), the same on
      a full build. Recency is ranked by the date of the last order, which ranks buyers as
      recency_days does at any now: a build at a later now alone moves no score.
    A customer no longer in the customers input loses their row (forget_customers_gone).
    A store's own attribute models (var flowhouse_attribute_models) are not tracked: with any, every
    build is a full one. -#}

{%- set extras = var('flowhouse_attribute_models', none) or [] %}
{%- set marks = none if extras else flowhouse.incremental_marks() %}
{%- set now = marks.now if marks else flowhouse.flowhouse_now() %}
{#- the settings the columns are computed with: a change rewrites every row -#}
{%- set settings_fingerprint = local_md5(tojson({
    'tiers': var('tiers', none), 'eu_countries': var('eu_countries', none),
    'customer_properties': var('customer_properties', none),
}, sort_keys=true)) %}
{%- set upstream = [
    'int_customer_orders', 'int_customer_last_activity', 'int_customer_consent',
    'int_customer_suppression', 'int_customer_category_affinity',
] %}

with

customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('int_customer_orders') }}

),

last_activity as (

    select * from {{ ref('int_customer_last_activity') }}

),

consent as (

    select * from {{ ref('int_customer_consent') }}

),

suppression as (

    select * from {{ ref('int_customer_suppression') }}

),

affinity as (

    select * from {{ ref('int_customer_category_affinity') }}

),

push as (

    select * from {{ ref('int_customer_push') }}

),

actions as (

    select * from {{ ref('int_customer_actions') }}

),

subscriptions as (

    select * from {{ ref('int_customer_subscriptions') }}

),

as_of as (

    select {{ now }} as now_at

),

own as (

    -- each customer's own columns (not from an incremental input), as one fingerprint
    select
        customers.customer_id,
        {{ flowhouse.fingerprint([
            'customers.email', 'customers.phone', 'customers.first_name',
            'customers.effective_timezone', 'customers.has_valid_timezone', 'customers.country',
            'customers.birthday', 'customers.properties', 'customers.created_at',
            'customers.is_wholesale', 'customers.email_opt_in', 'customers.sms_opt_in',
            'actions.flow_loyalty_points', 'actions.tags', 'actions.tier_override',
            'actions.tier_override_at', 'subscriptions.subscription_status', 'push.push_token',
            'push.push_token_count', 'push.has_push_consent', 'push.has_push_opt_in',
            'push.push_unsubscribed_at', 'push.onsite_unsubscribed_at',
        ]) }} as inputs_fingerprint
    from customers
    left join push on customers.customer_id = push.customer_id
    left join actions on customers.customer_id = actions.customer_id
    left join subscriptions on customers.customer_id = subscriptions.customer_id

),

buyers as (

    -- the three RFM measures of every customer who ordered (recency as the last order's date:
    -- recency_days at any now ranks buyers the same, latest first)
    select
        cast(orders.last_order_at as date) as last_order_date,
        orders.order_count,
        {{ flowhouse.money('coalesce(orders.net_revenue, 0)') }} as lifetime_revenue
    from orders
    where orders.order_count > 0
        and orders.customer_id in (select customer_id from customers)

),

quintiles as (

    select
        last_order_date,
        order_count,
        lifetime_revenue,
        {{ flowhouse.quintile_score('last_order_date') }} as recency_score,
        {{ flowhouse.quintile_score('order_count') }} as frequency_score,
        {{ flowhouse.quintile_score('lifetime_revenue') }} as monetary_score
    from buyers

),

rfm_bounds as (

    -- per score, the first value in its order that has it: a buyer's score is the highest whose
    -- bound the buyer's value reaches (scores only grow along the order; a score nobody has is null)
    select
        {%- for k in [2, 3, 4, 5] %}
        min(case when recency_score = {{ k }} then last_order_date end) as recency_{{ k }},
        min(case when frequency_score = {{ k }} then order_count end) as frequency_{{ k }},
        min(case when monetary_score = {{ k }} then lifetime_revenue end) as monetary_{{ k }}{{ ',' if not loop.last }}
        {%- endfor %}
    from quintiles

),

{%- if marks %}

changed as (

    {%- for model in upstream %}
    select customer_id from {{ ref(model) }} where refreshed_at > {{ marks.as_of }}
    union
    {%- endfor %}
    select own.customer_id
    from own
    left join {{ this }} as kept
        on own.customer_id = kept.customer_id
    where kept.inputs_fingerprint is null or kept.inputs_fingerprint <> own.inputs_fingerprint
    union
    -- every row, when the settings changed (tiers, EU countries, customer properties)
    select customer_id from {{ this }}
    where settings_fingerprint is null or settings_fingerprint <> '{{ settings_fingerprint }}'
    union
    -- the customers with a delivery that left the last 14 or 30 days since the last build's now
    {%- for days in [14, 30] %}
    select customer_id from {{ ref('stg_events') }}
    where event_type = 'message_delivered'
        and occurred_at > {{ marks.as_of }} - {{ days }} * interval '1 day'
        and occurred_at <= {{ marks.now }} - {{ days }} * interval '1 day'
    union
    {%- endfor %}
    -- the rows whose scores the bounds moved
    select kept.customer_id
    from {{ this }} as kept
    cross join rfm_bounds
    where {{ flowhouse.rfm_scores_differ('kept', 'rfm_bounds') }}

),

{%- endif %}

deliveries as (

    -- the deliveries of the last 30 days known by now (of the customers written, when incremental)
    select customer_id, occurred_at
    from {{ ref('stg_events') }}
    where event_type = 'message_delivered'
        and customer_id is not null
        and occurred_at > {{ now }} - 30 * interval '1 day'
        and occurred_at <= {{ now }}
        and loaded_at <= {{ now }}
        {%- if marks %}
        and customer_id in (select customer_id from changed)
        {%- endif %}

),

pressure as (

    select
        deliveries.customer_id,
        cast(sum(
            case when deliveries.occurred_at > as_of.now_at - 14 * interval '1 day' then 1 else 0 end
        ) as integer) as promo_pressure_14d,
        cast(count(*) as integer) as promo_pressure_30d
    from deliveries
    cross join as_of
    group by deliveries.customer_id

),

joined as (

    select
        customers.customer_id,
        customers.email,
        customers.phone,
        customers.first_name,
        customers.effective_timezone,
        customers.has_valid_timezone,
        customers.country,
        {{ flowhouse.is_eu('customers.country') }} as is_eu,
        customers.birthday,
        customers.properties,
        {{ flowhouse.json_number('customers.properties', 'loyalty_points') }} as store_loyalty_points,
        coalesce(actions.flow_loyalty_points, 0) as flow_loyalty_points,
        coalesce(actions.tags, {{ flowhouse.empty_text_list() }}) as tags,
        actions.tier_override,
        actions.tier_override_at,
        coalesce(subscriptions.subscription_status, 'none') as subscription_status,
        customers.created_at,
        customers.is_wholesale,
        customers.email_opt_in,
        customers.sms_opt_in,
        coalesce(orders.order_count, 0) as order_count,
        coalesce(orders.order_count, 0) > 0 as has_ordered,
        orders.first_order_at,
        orders.first_order_value,
        orders.last_order_at,
        orders.last_order_value,
        {{ flowhouse.money('coalesce(orders.gross_revenue, 0)') }} as gross_revenue,
        {{ flowhouse.money('coalesce(orders.refunded_amount, 0)') }} as refunded_amount,
        {{ flowhouse.money('coalesce(orders.net_revenue, 0)') }} as lifetime_revenue,
        coalesce(orders.discounted_order_count, 0) as discounted_order_count,
        affinity.top_category,
        affinity.top_category_source,
        affinity.top_category_share,
        coalesce(pressure.promo_pressure_14d, 0) as promo_pressure_14d,
        coalesce(pressure.promo_pressure_30d, 0) as promo_pressure_30d,
        last_activity.last_activity_at,
        consent.last_email_opted_in_at,
        consent.last_email_unsubscribed_at,
        consent.last_sms_opted_in_at,
        consent.last_sms_unsubscribed_at,
        consent.last_whatsapp_opted_in_at,
        consent.last_whatsapp_unsubscribed_at,
        consent.last_viber_opted_in_at,
        consent.last_viber_unsubscribed_at,
        suppression.email_suppressed_at,
        suppression.sms_suppressed_at,
        suppression.whatsapp_suppressed_at,
        suppression.viber_suppressed_at,
        push.push_token,
        coalesce(push.push_token_count, 0) as push_token_count,
        coalesce(push.has_push_consent, false) as has_push_consent,
        coalesce(push.has_push_opt_in, false) as has_push_opt_in,
        push.push_unsubscribed_at,
        push.onsite_unsubscribed_at,
        own.inputs_fingerprint,
        as_of.now_at as computed_at
    {#- each input read for the written customers alone when incremental (a keyed semi-join, so
        no hash table is built over a whole input) -#}
    {%- set inputs = ['own', 'orders', 'last_activity', 'pressure', 'consent', 'suppression',
                      'affinity', 'push', 'actions', 'subscriptions'] %}
    from {{ flowhouse.rows_of_written('customers', marks) }} as customers
    cross join as_of
    {%- for input in inputs %}
    {{ 'inner' if input == 'own' else 'left' }} join
        {{ flowhouse.rows_of_written(input, marks) }} as {{ input }}
        on customers.customer_id = {{ input }}.customer_id
    {%- endfor %}

),

scored as (

    select
        *,
        {{ flowhouse.rfm_score('recency', 'cast(last_order_at as date)', 'rfm_bounds') }}
            as rfm_recency_score,
        {{ flowhouse.rfm_score('frequency', 'order_count', 'rfm_bounds') }}
            as rfm_frequency_score,
        {{ flowhouse.rfm_score('monetary', 'lifetime_revenue', 'rfm_bounds') }}
            as rfm_monetary_score
    from joined
    cross join rfm_bounds

),

final as (

    select
        customer_id,
        email,
        phone,
        first_name,
        effective_timezone,
        has_valid_timezone,
        country,
        is_eu,
        birthday,
        created_at,
        is_wholesale,
        has_ordered,
        order_count,
        first_order_at,
        first_order_value,
        last_order_at,
        last_order_value,
        gross_revenue,
        refunded_amount,
        lifetime_revenue,
        {{ flowhouse.money('gross_revenue * 1.0 / nullif(order_count, 0)') }}
            as average_order_value,
        rfm_recency_score,
        rfm_frequency_score,
        rfm_monetary_score,
        cast(rfm_recency_score as {{ dbt.type_string() }})
            || cast(rfm_frequency_score as {{ dbt.type_string() }})
            || cast(rfm_monetary_score as {{ dbt.type_string() }}) as rfm_score,
        case
            when not has_ordered then null
            when rfm_recency_score >= 4 and rfm_frequency_score >= 4 then 'champions'
            when rfm_recency_score <= 2 and rfm_frequency_score >= 3 then 'at_risk'
            when rfm_frequency_score >= 3 then 'loyal'
            when rfm_recency_score >= 4 then 'recent'
            when rfm_recency_score <= 2 then 'hibernating'
            else 'needs_attention'
        end as rfm_segment,
        coalesce(tier_override, {{ flowhouse.tier_name('lifetime_revenue') }}) as tier,
        {{ flowhouse.tier_name('lifetime_revenue') }} as revenue_tier,
        tier_override,
        tier_override_at,
        tags,
        cast(coalesce(store_loyalty_points, 0) + flow_loyalty_points as bigint) as loyalty_points,
        flow_loyalty_points,
        subscription_status,
        properties,
        {%- for key, kind in (var('customer_properties', none) or {}).items() %}
        {{ flowhouse.customer_property('properties', key, kind) }} as properties__{{ key }},
        {%- endfor %}
        {{ flowhouse.next_tier_name('lifetime_revenue') }} as next_tier,
        {{ flowhouse.money(flowhouse.revenue_to_next_tier('lifetime_revenue')) }}
            as revenue_to_next_tier,
        discounted_order_count,
        cast(discounted_order_count * 1.0 / nullif(order_count, 0) as decimal(5, 4))
            as discount_sensitivity,
        top_category,
        top_category_source,
        top_category_share,
        promo_pressure_14d,
        promo_pressure_30d,
        last_activity_at,
        case
            when last_email_unsubscribed_at is not null
                and (
                    last_email_opted_in_at is null
                    or last_email_unsubscribed_at >= last_email_opted_in_at
                ) then false
            when last_email_opted_in_at is not null then true
            else email_opt_in
        end as has_email_consent,
        case
            when last_sms_unsubscribed_at is not null
                and (
                    last_sms_opted_in_at is null
                    or last_sms_unsubscribed_at >= last_sms_opted_in_at
                ) then false
            when last_sms_opted_in_at is not null then true
            else sms_opt_in
        end as has_sms_consent,
        coalesce(email_opt_in, false) or last_email_opted_in_at is not null as has_email_opt_in,
        coalesce(sms_opt_in, false) or last_sms_opted_in_at is not null as has_sms_opt_in,
        last_email_unsubscribed_at as email_unsubscribed_at,
        last_sms_unsubscribed_at as sms_unsubscribed_at,
        email_suppressed_at,
        sms_suppressed_at,
        {#- WhatsApp and Viber: consent only from an opt-in on that channel (the customer row has
            no column for them), withdrawn by a later unsubscribe from it or from all -#}
        {%- for chat in ['whatsapp', 'viber'] %}
        coalesce(
            last_{{ chat }}_opted_in_at is not null
            and (
                last_{{ chat }}_unsubscribed_at is null
                or last_{{ chat }}_unsubscribed_at < last_{{ chat }}_opted_in_at
            ),
            false
        ) as has_{{ chat }}_consent,
        last_{{ chat }}_opted_in_at is not null as has_{{ chat }}_opt_in,
        last_{{ chat }}_unsubscribed_at as {{ chat }}_unsubscribed_at,
        {{ chat }}_suppressed_at,
        {%- endfor %}
        push_token,
        push_token_count,
        has_push_consent,
        has_push_opt_in,
        push_unsubscribed_at,
        onsite_unsubscribed_at,
        inputs_fingerprint,
        cast('{{ settings_fingerprint }}' as {{ dbt.type_string() }}) as settings_fingerprint,
        computed_at,
        computed_at as refreshed_at,
        -- it reads no events itself (the inputs' refreshed_at say what changed): the build's now
        computed_at as loaded_through
    from scored

)

{#- A store's own attribute models (var flowhouse_attribute_models, keyed by customer_id) add their
    columns; see flowhouse.attribute_columns. -#}
select
    final.*
    {%- for name in extras %}
    {{- flowhouse.attribute_columns(ref(name), 'extra_' ~ loop.index) }}
    {%- endfor %}
from final
{%- for name in extras %}
left join {{ ref(name) }} as extra_{{ loop.index }}
    on extra_{{ loop.index }}.customer_id = final.customer_id
{%- endfor %}
