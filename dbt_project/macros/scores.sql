{#- A 1–5 quintile score by rank: 1 + floor(5 × percent_rank), capped at 5. Unlike ntile(5), equal values
    always get the same score (ntile splits ties arbitrarily across buckets), so a score never flips between
    builds for customers whose values did not change. Higher `order_by` values score higher. -#}
{% macro quintile_score(order_by, partition_by=none) -%}
    cast(least(5, 1 + floor(5 * percent_rank() over (
        {%- if partition_by %}partition by {{ partition_by }} {% endif -%}
        order by {{ order_by }}
    ))) as integer)
{%- endmacro %}
