{#- Helpers of the performance marts (models/marts): safe ratios, JSON text in state tables, and the
    normal distribution for confidence intervals and p-values. -#}

{#- The var attribution_window_days, checked: keys <channel>_open or <channel>_click, values a number of
    days (0 or more) or null (not a touch). A bad entry stops the build naming it. -#}
{% macro attribution_windows() -%}
    {%- set windows = var('attribution_window_days') -%}
    {%- if windows is not mapping -%}
        {{ exceptions.raise_compiler_error("dbt var attribution_window_days: expected a mapping of
            <channel>_<open|click> to days, got " ~ windows) }}
    {%- endif -%}
    {%- for key, days in windows.items() -%}
        {%- set parts = key.split('_') -%}
        {%- if parts | length < 2 or parts[-1] not in ('open', 'click') -%}
            {{ exceptions.raise_compiler_error("dbt var attribution_window_days." ~ key ~ ": expected a key
                <channel>_open or <channel>_click (email_click, sms_click, ...)") }}
        {%- endif -%}
        {%- if days is not none and (days is not number or days < 0) -%}
            {{ exceptions.raise_compiler_error("dbt var attribution_window_days." ~ key ~ ": expected a
                number of days (0 or more) or null, got " ~ days) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(windows) }}
{%- endmacro %}


{#- numerator / denominator as a double; null when the denominator is zero or null. -#}
{% macro ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double precision) / nullif({{ denominator }}, 0))
{%- endmacro %}


{#- The two-sided 97.5% quantile of the standard normal: a 95% interval is estimate ± z * se. -#}
{% macro z_95() -%}
    1.959963984540054
{%- endmacro %}


{#- The two-sided p-value of a z statistic, 2 * (1 - Phi(|z|)) = erfc(|z| / sqrt(2)), by
    Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7). Null z gives null. -#}
{% macro two_sided_p(z) -%}
    {%- set x = '(abs(' ~ z ~ ') / 1.4142135623730951)' -%}
    {%- set t = '(1.0 / (1.0 + 0.3275911 * ' ~ x ~ '))' -%}
    case when ({{ z }}) is not null then least(1.0, {{ t }} * (0.254829592 + {{ t }} * (-0.284496736
        + {{ t }} * (1.421413741 + {{ t }} * (-1.453152027 + {{ t }} * 1.061405429))))
        * exp(-{{ x }} * {{ x }})) end
{%- endmacro %}


{#- JSON text (a state table's `params`) as the warehouse's JSON type. -#}
{% macro parse_json(expression) -%}
    {{ return(adapter.dispatch('parse_json', 'flowhouse')(expression)) }}
{%- endmacro %}

{% macro default__parse_json(expression) -%}
    cast({{ expression }} as json)
{%- endmacro %}

{% macro postgres__parse_json(expression) -%}
    cast({{ expression }} as jsonb)
{%- endmacro %}


{#- A JSON scalar (an element json_array_elements gave) as text. -#}
{% macro json_scalar_text(value) -%}
    {{ return(adapter.dispatch('json_scalar_text', 'flowhouse')(value)) }}
{%- endmacro %}

{% macro default__json_scalar_text(value) -%}
    json_extract_string({{ value }}, '$')
{%- endmacro %}

{% macro postgres__json_scalar_text(value) -%}
    ({{ value }} #>> '{}')
{%- endmacro %}


{#- The customers whose facts an incremental mart rebuilds: those with messages, enrollments or events
    changed since the watermarks the mart's rows recorded (less var marts_lookback_hours), and those with
    a row the mart marked open (`open_column`: a goal or attribution window still running). Only the
    events the marts read count: orders, engagement, unsubscribes and the flows' goal events (not a
    page view, nor a segment change a model refresh stamps). -#}
{% macro marts_changed_customers(open_column=none) -%}
    {%- set slack = var('marts_lookback_hours') ~ " * interval '1 hour'" -%}
    select customer_id from {{ source('flowhouse', 'messages') }}
    where updated_at >= coalesce((select max(_messages_watermark) from {{ this }}), cast('1900-01-01' as timestamp)) - {{ slack }}
    union
    select customer_id from {{ source('flowhouse', 'enrollments') }}
    where updated_at_tick >= coalesce((select max(_enrollments_watermark) from {{ this }}), cast('1900-01-01' as timestamp)) - {{ slack }}
    union
    select customer_id from {{ ref('events') }}
    where loaded_at >= coalesce((select max(_events_watermark) from {{ this }}), cast('1900-01-01' as timestamp)) - {{ slack }}
        and ({{ flowhouse.event_types_in('event_type', marts_event_types()) }}
            or event_type in (select goal_event from {{ source('flowhouse', 'flows') }}))
    {%- if open_column %}
    union
    select customer_id from {{ this }} where {{ open_column }}
    {%- endif %}
{%- endmacro %}


{#- The event types the marts read besides the flows' goal events. -#}
{% macro marts_event_types() -%}
    {{ return(['order_placed', 'order_refunded', 'message_delivered', 'message_opened', 'message_clicked',
        'message_bounced', 'message_complained', 'unsubscribed']) }}
{%- endmacro %}


{#- The watermarks an incremental mart records on every row it writes. -#}
{% macro marts_watermarks() -%}
    (select max(updated_at) from {{ source('flowhouse', 'messages') }}) as _messages_watermark,
    (select max(updated_at_tick) from {{ source('flowhouse', 'enrollments') }}) as _enrollments_watermark,
    (select max(loaded_at) from {{ ref('events') }}) as _events_watermark
{%- endmacro %}


{#- Comparing two groups (a treatment or an arm, 1, against a control, 0). `name` prefixes the columns.
    proportion_comparison: the difference of two rates x/n, its 95% interval by Newcombe's hybrid score
    method (Wilson intervals of each rate, combined; unlike the plain normal interval it stays honest
    when a group has no or all conversions), and the two-sided p-value of the pooled two-proportion z
    test. Columns are null when a group is empty; the p-value is null when the rates leave no variance. -#}
{% macro proportion_comparison(name, x1, n1, x0, n0) -%}
    {%- set p1 = flowhouse.ratio(x1, n1) -%}
    {%- set p0 = flowhouse.ratio(x0, n0) -%}
    {%- set pooled = flowhouse.ratio('(' ~ x1 ~ ') + (' ~ x0 ~ ')', '(' ~ n1 ~ ') + (' ~ n0 ~ ')') -%}
    {%- set pooled_se = 'sqrt(' ~ pooled ~ ' * (1 - ' ~ pooled ~ ') * (1.0 / nullif(' ~ n1
        ~ ', 0) + 1.0 / nullif(' ~ n0 ~ ', 0)))' -%}
    {%- set l1 = flowhouse.wilson_bound(p1, n1, -1) -%}
    {%- set u1 = flowhouse.wilson_bound(p1, n1, 1) -%}
    {%- set l0 = flowhouse.wilson_bound(p0, n0, -1) -%}
    {%- set u0 = flowhouse.wilson_bound(p0, n0, 1) -%}
    ({{ p1 }} - {{ p0 }}) as {{ name }},
    ({{ p1 }} - {{ p0 }}) - sqrt(({{ p1 }} - {{ l1 }}) * ({{ p1 }} - {{ l1 }})
        + ({{ u0 }} - {{ p0 }}) * ({{ u0 }} - {{ p0 }})) as {{ name }}_ci_low,
    ({{ p1 }} - {{ p0 }}) + sqrt(({{ u1 }} - {{ p1 }}) * ({{ u1 }} - {{ p1 }})
        + ({{ p0 }} - {{ l0 }}) * ({{ p0 }} - {{ l0 }})) as {{ name }}_ci_high,
    {{ flowhouse.two_sided_p('(' ~ p1 ~ ' - ' ~ p0 ~ ') / nullif(' ~ pooled_se ~ ', 0)') }}
{%- endmacro %}


{#- A bound of the 95% Wilson score interval of a rate `p` over `n` trials: `side` -1 the lower, 1 the
    upper. -#}
{% macro wilson_bound(p, trials, side) -%}
    {%- set n = 'nullif(' ~ trials ~ ', 0)' -%}
    {%- set z = flowhouse.z_95() | trim -%}
    {%- set zz = '(' ~ z ~ ' * ' ~ z ~ ')' -%}
    (({{ p }} + {{ zz }} / (2.0 * {{ n }}) {{ '-' if side < 0 else '+' }} {{ z }} * sqrt({{ p }} * (1 - {{ p }})
        / {{ n }} + {{ zz }} / (4.0 * {{ n }} * {{ n }}))) / (1 + {{ zz }} / {{ n }}))
{%- endmacro %}


{#- mean_comparison: the difference of two means, its 95% interval and two-sided p-value (Welch's standard
    error, normal approximation: fine for the hundreds of enrollees a comparison needs). `m` are means,
    `v` sample variances, `n` counts. -#}
{% macro mean_comparison(name, m1, v1, n1, m0, v0, n0) -%}
    {%- set se = 'sqrt(' ~ v1 ~ ' / nullif(' ~ n1 ~ ', 0) + ' ~ v0 ~ ' / nullif(' ~ n0 ~ ', 0))' -%}
    ({{ m1 }} - {{ m0 }}) as {{ name }},
    ({{ m1 }} - {{ m0 }}) - {{ flowhouse.z_95() }} * nullif({{ se }}, 0) as {{ name }}_ci_low,
    ({{ m1 }} - {{ m0 }}) + {{ flowhouse.z_95() }} * nullif({{ se }}, 0) as {{ name }}_ci_high,
    {{ flowhouse.two_sided_p('(' ~ m1 ~ ' - ' ~ m0 ~ ') / nullif(' ~ se ~ ', 0)') }}
{%- endmacro %}


{#- The counts of a group of message_facts rows (kind 'message'): queued, held out, skipped, sent,
    delivered, opened, clicked, bounced, unsubscribed, and the orders and revenue credited to them. -#}
{% macro message_counts() -%}
        count(case when is_queued then 1 end) as messages_queued,
        count(case when is_holdout then 1 end) as messages_held_out,
        count(case when status = 'skipped' then 1 end) as messages_skipped,
        count(case when is_sent then 1 end) as messages_sent,
        count(case when is_delivered then 1 end) as messages_delivered,
        count(case when is_opened then 1 end) as messages_opened,
        count(case when is_clicked then 1 end) as messages_clicked,
        count(case when is_bounced then 1 end) as messages_bounced,
        count(case when unsubscribed_at is not null then 1 end) as messages_unsubscribed,
        sum(attributed_orders) as attributed_orders,
        sum(attributed_revenue) as attributed_revenue
{%- endmacro %}


{#- The date of a UTC timestamp in the store's time zone (var store_timezone; UTC unless set): the day a
    mart counts an event on. -#}
{% macro store_date(expression) -%}
    {%- set zone = var('store_timezone', 'UTC') -%}
    {%- if zone in ('UTC', 'Etc/UTC') -%}
        cast({{ expression }} as date)
    {%- else -%}
        cast(({{ expression }} at time zone 'UTC') at time zone '{{ zone }}' as date)
    {%- endif -%}
{%- endmacro %}
