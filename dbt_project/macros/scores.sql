{#- A 1–5 quintile score by rank: 1 + floor(5 × percent_rank), capped at 5. Unlike ntile(5), equal values
    always get the same score (ntile splits ties arbitrarily across buckets), so a score never flips between
    builds for customers whose values did not change. Higher `order_by` values score higher. -#}
{% macro quintile_score(order_by, partition_by=none) -%}
    cast(least(5, 1 + floor(5 * percent_rank() over (
        {%- if partition_by %}partition by {{ partition_by }} {% endif -%}
        order by {{ order_by }}
    ))) as integer)
{%- endmacro %}


{#- A buyer's RFM score from the quintile bounds (int_customer_attributes' rfm_bounds): the highest
    score whose bound `value` reaches (every measure ranks higher values higher: recency as the date
    of the last order); null for a customer who never ordered. -#}
{% macro rfm_score(measure, value, bounds, has_ordered='has_ordered') -%}
    case
        when not {{ has_ordered }} then null
        {%- for k in [5, 4, 3, 2] %}
        when {{ value }} >= {{ bounds }}.{{ measure }}_{{ k }} then {{ k }}
        {%- endfor %}
        else 1
    end
{%- endmacro %}


{#- Whether a kept int_customer_attributes row's RFM scores differ from those of the current bounds. -#}
{% macro rfm_scores_differ(kept, bounds) -%}
    {%- set scores = [
        ('recency', 'cast(' ~ kept ~ '.last_order_at as date)'),
        ('frequency', kept ~ '.order_count'),
        ('monetary', kept ~ '.lifetime_revenue'),
    ] -%}
    {%- for measure, value in scores %}
    {{ 'or ' if not loop.first }}coalesce({{ kept }}.rfm_{{ measure }}_score, 0)
        <> coalesce({{ flowhouse.rfm_score(measure, value, bounds, kept ~ '.has_ordered') }}, 0)
    {%- endfor %}
{%- endmacro %}
