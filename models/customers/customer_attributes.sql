{#- One row per customer with everything flows, segments and audiences filter on, as of the build's now:
    int_customer_attributes (a table, incremental by what changed) and the columns that move with now
    alone, computed here from its times and the build's now (a literal, so a build at a later now with
    nothing new rewrites no row): recency_days, days_since_first_order, days_since_last_activity and
    predicted_ltv. Every other column is stored; the bookkeeping columns of the table (fingerprints,
    stamps) are not shown. Each column is computed from its own row only, so a keyed read (the engine's
    `left join core.customer_attributes`) reads only the rows it joins. -#}

{%- set extras = var('flowhouse_attribute_models', none) or [] %}
{%- set now = flowhouse.now_literal() %}

with

attributes as (

    select * from {{ ref('int_customer_attributes') }}

),

days_since as (

    select
        *,
        {{ dbt.datediff('last_order_at', now, 'day') }} as recency_days,
        {{ dbt.datediff('first_order_at', now, 'day') }} as days_since_first_order,
        {{ dbt.datediff('last_activity_at', now, 'day') }} as days_since_last_activity
    from attributes

),

ltv as (

    -- predicted LTV: purchase rate over the observed span (at least ltv_min_span_days)
    select
        *,
        order_count * 365.0
            / greatest(days_since_first_order, {{ var('ltv_min_span_days') }}) as orders_per_year,
        greatest(days_since_first_order, {{ var('ltv_min_span_days') }}) * 1.0
            / nullif(order_count, 0) as expected_gap_days
    from days_since

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
        average_order_value,
        recency_days,
        days_since_first_order,
        rfm_recency_score,
        rfm_frequency_score,
        rfm_monetary_score,
        rfm_score,
        rfm_segment,
        cast(
            coalesce(
                cast(gross_revenue as double precision) / nullif(order_count, 0)
                * orders_per_year
                * {{ var('ltv_horizon_years') }}
                * expected_gap_days
                / (expected_gap_days + greatest(recency_days - expected_gap_days, 0)),
                0
            ) as decimal(18, 2)
        ) as predicted_ltv,
        tier,
        revenue_tier,
        tier_override,
        tier_override_at,
        tags,
        loyalty_points,
        flow_loyalty_points,
        subscription_status,
        properties,
        {%- for key in (var('customer_properties', none) or {}) %}
        properties__{{ key }},
        {%- endfor %}
        next_tier,
        revenue_to_next_tier,
        discounted_order_count,
        discount_sensitivity,
        top_category,
        top_category_source,
        top_category_share,
        promo_pressure_14d,
        promo_pressure_30d,
        last_activity_at,
        days_since_last_activity,
        has_email_consent,
        has_sms_consent,
        has_email_opt_in,
        has_sms_opt_in,
        email_unsubscribed_at,
        sms_unsubscribed_at,
        email_suppressed_at,
        sms_suppressed_at,
        {%- for chat in ['whatsapp', 'viber'] %}
        has_{{ chat }}_consent,
        has_{{ chat }}_opt_in,
        {{ chat }}_unsubscribed_at,
        {{ chat }}_suppressed_at,
        {%- endfor %}
        push_token,
        push_token_count,
        has_push_consent,
        has_push_opt_in,
        push_unsubscribed_at,
        onsite_unsubscribed_at,
        computed_at
        {%- for name in extras %}
        {{- flowhouse.attribute_columns(ref(name), 'ltv') }}
        {%- endfor %}
    from ltv

)

select * from final
