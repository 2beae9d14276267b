{#- Loyalty tiers from var('tiers'): a list of {name, min_revenue}. A customer is in the highest tier whose
    min_revenue their revenue reaches; below the lowest bound there is no tier (null). -#}

{% macro tiers_ascending() -%}
    {{ return(var('tiers', []) | sort(attribute='min_revenue')) }}
{%- endmacro %}


{#- SQL: the tier name for a revenue expression. -#}
{% macro tier_name(revenue) -%}
    {%- set tiers = flowhouse.tiers_ascending() -%}
    {%- if tiers | length == 0 -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        case
        {%- for tier in tiers | reverse %}
            when ({{ revenue }}) >= {{ tier.min_revenue }} then '{{ tier.name }}'
        {%- endfor %}
        end
    {%- endif -%}
{%- endmacro %}


{#- SQL: the next tier up (null at the top). -#}
{% macro next_tier_name(revenue) -%}
    {%- set tiers = flowhouse.tiers_ascending() -%}
    {%- if tiers | length == 0 -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        case
        {%- for tier in tiers %}
            when ({{ revenue }}) < {{ tier.min_revenue }} then '{{ tier.name }}'
        {%- endfor %}
        end
    {%- endif -%}
{%- endmacro %}


{#- SQL: the revenue still missing to reach the next tier (null at the top). -#}
{% macro revenue_to_next_tier(revenue) -%}
    {%- set tiers = flowhouse.tiers_ascending() -%}
    {%- if tiers | length == 0 -%}
        cast(null as numeric)
    {%- else -%}
        case
        {%- for tier in tiers %}
            when ({{ revenue }}) < {{ tier.min_revenue }} then {{ tier.min_revenue }} - ({{ revenue }})
        {%- endfor %}
        end
    {%- endif -%}
{%- endmacro %}


{#- SQL literal: the tier a customer with no revenue is in, where every customer starts (or null). -#}
{% macro starting_tier() -%}
    {%- set start = flowhouse.tiers_ascending() | selectattr('min_revenue', 'le', 0) | list -%}
    {%- if start | length == 0 -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        '{{ start[-1].name }}'
    {%- endif -%}
{%- endmacro %}
