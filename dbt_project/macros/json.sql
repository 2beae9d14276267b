{#- Cross-warehouse JSON access. `column` is a JSON (DuckDB) / jsonb (PostgreSQL) expression and `key` a
    top-level property name. -#}

{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text', 'flowhouse')(column, key)) }}
{%- endmacro %}

{% macro default__json_text(column, key) -%}
    json_extract_string({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro postgres__json_text(column, key) -%}
    ({{ column }} ->> '{{ key }}')
{%- endmacro %}


{#- A property as a number; null when missing or not a number (safe_number: never fails a build). -#}
{% macro json_number(column, key) -%}
    {{ flowhouse.safe_number(flowhouse.json_text(column, key)) }}
{%- endmacro %}


{% macro json_get(column, key) -%}
    {{ return(adapter.dispatch('json_get', 'flowhouse')(column, key)) }}
{%- endmacro %}

{% macro default__json_get(column, key) -%}
    json_extract({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro postgres__json_get(column, key) -%}
    ({{ column }} -> '{{ key }}')
{%- endmacro %}


{#- A JSON object from an ordered mapping of key -> SQL expression, e.g.
    json_object_of({'segment': 'segment', 'from_tier': 'previous_tier'}). Null values stay JSON null. -#}
{% macro json_object_of(pairs) -%}
    {{ return(adapter.dispatch('json_object_of', 'flowhouse')(pairs)) }}
{%- endmacro %}

{% macro default__json_object_of(pairs) -%}
    json_object({%- for key, expression in pairs.items() -%}
        '{{ key }}', {{ expression }}{% if not loop.last %}, {% endif %}
    {%- endfor -%})
{%- endmacro %}

{% macro postgres__json_object_of(pairs) -%}
    jsonb_build_object({%- for key, expression in pairs.items() -%}
        '{{ key }}', {{ expression }}{% if not loop.last %}, {% endif %}
    {%- endfor -%})
{%- endmacro %}


{#- A relation with one row per element of the JSON array at `json_column`.`key` of each row of `relation`
    (a CTE or table name): the listed `columns` of that row, `position` (1-based) and `value` (the element,
    JSON / jsonb). A row whose key is missing or not an array gives no rows (it never fails the build).
    Use it as a from item:
        from {{ flowhouse.json_array_elements('placed', 'properties', 'lines', ['order_id']) }} as lines
    DuckDB unnests a list in the select list (json_each in a lateral join is several times slower);
    PostgreSQL uses jsonb_array_elements with ordinality. -#}
{% macro json_array_elements(relation, json_column, key, columns) -%}
    {{ return(adapter.dispatch('json_array_elements', 'flowhouse')(relation, json_column, key, columns)) }}
{%- endmacro %}

{% macro default__json_array_elements(relation, json_column, key, columns) -%}
    (
        select
            {%- for column in columns %}
            {{ column }},
            {%- endfor %}
            generate_subscripts(elements, 1) as position,
            unnest(elements) as value
        from (
            select
                {%- for column in columns %}
                {{ column }},
                {%- endfor %}
                from_json(json_extract({{ json_column }}, '$.{{ key }}'), '["json"]') as elements
            from {{ relation }}
            where json_type({{ json_column }}, '$.{{ key }}') = 'ARRAY'
        ) as arrays
    )
{%- endmacro %}

{% macro postgres__json_array_elements(relation, json_column, key, columns) -%}
    (
        select
            {%- for column in columns %}
            arrays.{{ column }},
            {%- endfor %}
            elements.position,
            elements.value
        from {{ relation }} as arrays
        cross join lateral jsonb_array_elements(
            case
                when jsonb_typeof(arrays.{{ json_column }} -> '{{ key }}') = 'array'
                    then arrays.{{ json_column }} -> '{{ key }}'
                else '[]'::jsonb
            end
        ) with ordinality as elements(value, position)
    )
{%- endmacro %}


{#- A money amount from a top-level property (null when missing), typed by money(). -#}
{% macro json_money(column, key) -%}
    {{ flowhouse.money(flowhouse.json_number(column, key)) }}
{%- endmacro %}


{#- Money: decimal(18, 2) on every warehouse. Cast outputs explicitly, so a column keeps the same type
    (and scale) whatever arithmetic produced it. -#}
{% macro money(expression) -%}
    cast({{ expression }} as decimal(18, 2))
{%- endmacro %}
