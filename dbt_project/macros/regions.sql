{#- The member states of the European Union (ISO 3166-1 alpha-2; Greece is GR, as ISO names it, not EL),
    for customer_attributes.is_eu: var `eu_countries`, by default the 27 members since 1 February 2020:
    AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE. A store that means the
    EEA or another region sets its own list (models: {eu_countries: [...]} in _settings.yml). -#}
{% macro eu_countries() -%}
    {{ return(var('eu_countries')) }}
{%- endmacro %}


{#- SQL: whether the country code expression is an EU member state (null when the country is unknown). -#}
{% macro is_eu(country) -%}
    case
        when {{ country }} is null then null
        else {{ country }} in (
            {%- for code in flowhouse.eu_countries() -%}
                '{{ code | upper }}'{% if not loop.last %}, {% endif %}
            {%- endfor -%}
        )
    end
{%- endmacro %}


{#- SQL: a customer property of the JSON `column` as its declared type (customer_properties in
    _settings.yml, var `customer_properties`): number, boolean, date, timestamp or string. A value that
    is not of that type is null, never a failed build. -#}
{% macro customer_property(column, key, kind) -%}
    {%- set text = flowhouse.json_text(column, key) -%}
    {%- if kind == 'number' -%}
        {{ flowhouse.safe_number(text) }}
    {%- elif kind == 'boolean' -%}
        (case lower({{ text }}) when 'true' then true when 'false' then false end)
    {%- elif kind == 'date' -%}
        cast({{ flowhouse.safe_timestamp(text) }} as date)
    {%- elif kind == 'timestamp' -%}
        {{ flowhouse.safe_timestamp(text) }}
    {%- else -%}
        {{ text }}
    {%- endif -%}
{%- endmacro %}


{#- SQL: an empty list of text (customers without tags), the same type as array_agg of text. -#}
{% macro empty_text_list() -%}
    {{ return(adapter.dispatch('empty_text_list', 'flowhouse')()) }}
{%- endmacro %}

{% macro default__empty_text_list() -%}
    cast([] as varchar[])
{%- endmacro %}

{% macro postgres__empty_text_list() -%}
    cast(array[] as text[])
{%- endmacro %}
