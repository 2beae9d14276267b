{#- A 1–5 quintile score by rank: 1 + floor(5 × percent_rank), capped at 5. Unlike ntile(5), equal values
    always get the same score (ntile splits ties arbitrarily across buckets), so a score never flips between
    builds for customers whose values did not change. Higher `order_by` values score higher. -#}
{% macro quintile_score(order_by, partition_by=none) -%}
    cast(least(5, 1 + floor(5 * percent_rank() over (
        {%- if partition_by %}partition by {{ partition_by }} {% endif -%}
        order by {{ order_by }}
    ))) as integer)
{%- endmacro %}


{#- A buyer's RFM score from the quintile bounds (customer_attributes' rfm_bounds): the highest score
    whose bound `value` reaches (`reach`: '>=' for an ascending order, '<=' for a descending one);
    null for a customer who never ordered. -#}
{% macro rfm_score(measure, value, reach, bounds) -%}
    case
        when not has_ordered then null
        {%- for k in [5, 4, 3, 2] %}
        when {{ value }} {{ reach }} {{ bounds }}.{{ measure }}_{{ k }} then {{ k }}
        {%- endfor %}
        else 1
    end
{%- endmacro %}


{#- Whether a kept customer_attributes row's RFM scores differ from those of the current bounds. -#}
{% macro rfm_scores_differ(kept, bounds) -%}
    {%- set scores = [
        ('recency', 'recency_days', '<='), ('frequency', 'order_count', '>='),
        ('monetary', 'lifetime_revenue', '>='),
    ] -%}
    {%- for measure, value, reach in scores %}
    {%- set score -%}
        case
            when not {{ kept }}.has_ordered then null
            {%- for k in [5, 4, 3, 2] %}
            when {{ kept }}.{{ value }} {{ reach }} {{ bounds }}.{{ measure }}_{{ k }} then {{ k }}
            {%- endfor %}
            else 1
        end
    {%- endset %}
    {{ 'or ' if not loop.first }}coalesce({{ kept }}.rfm_{{ measure }}_score, 0)
        <> coalesce({{ score }}, 0)
    {%- endfor %}
{%- endmacro %}
