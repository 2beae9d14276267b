{#- The time zone names the warehouse itself can convert with, as a relation of (name_key, name):
    `name_key` is the lower-cased name to join on, `name` the canonical spelling. DuckDB lists ICU's zones
    through the pg_timezone_names() table function, PostgreSQL through the pg_timezone_names view. -#}
{% macro timezone_names() -%}
    {{ return(adapter.dispatch('timezone_names', 'flowhouse')()) }}
{%- endmacro %}

{% macro default__timezone_names() -%}
    (select lower(name) as name_key, min(name) as name from pg_timezone_names() group by lower(name))
{%- endmacro %}

{% macro postgres__timezone_names() -%}
    (
        select lower(name) as name_key, min(name) as name
        from pg_catalog.pg_timezone_names
        group by lower(name)
    )
{%- endmacro %}
