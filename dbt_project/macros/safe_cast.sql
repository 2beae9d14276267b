{#- Casts that never fail a build: a text that is not a number or a timestamp becomes null. Raw rows can
    reach raw.events by any path (an ELT tool writing directly), so every read of a property as a number
    or a timestamp goes through these; the rows they would null are listed in staging.quarantined_events
    (models/staging/quarantined_events.sql) and left out of stg_events. DuckDB has try_cast; PostgreSQL
    casts only a text its pattern accepts (plain SQL, no function to install). -#}

{#- The magnitude a number must stay below: it then fits the integer columns (quantities, stock, days)
    and money's decimal(18, 2); larger values (and inf, nan) are null rather than an overflow. -#}
{% macro safe_number_limit() -%}1e9{%- endmacro %}


{#- A text expression as a double, or null when it is not a number below safe_number_limit(). -#}
{% macro safe_number(text_expression) -%}
    {{ return(adapter.dispatch('safe_number', 'flowhouse')(text_expression)) }}
{%- endmacro %}

{% macro default__safe_number(text_expression) -%}
    (case
        when abs(try_cast({{ text_expression }} as double)) < {{ flowhouse.safe_number_limit() }}
            then try_cast({{ text_expression }} as double)
    end)
{%- endmacro %}

{% macro postgres__safe_number(text_expression) -%}
    (case
        when {{ text_expression }} ~ '^\s*[-+]?(\d{1,20}(\.\d{0,20})?|\.\d{1,20})([eE][-+]?\d{1,2})?\s*$'
            then (case
                when abs(cast({{ text_expression }} as double precision)) < {{ flowhouse.safe_number_limit() }}
                    then cast({{ text_expression }} as double precision)
            end)
    end)
{%- endmacro %}


{#- A text expression (ISO 8601: 2026-09-01, 2026-09-01 10:00, 2026-09-01T10:00:00Z) as a timestamp, or
    null when it is not one. -#}
{% macro safe_timestamp(text_expression) -%}
    {{ return(adapter.dispatch('safe_timestamp', 'flowhouse')(text_expression)) }}
{%- endmacro %}

{% macro default__safe_timestamp(text_expression) -%}
    try_cast({{ text_expression }} as timestamp)
{%- endmacro %}

{#- The pattern checks the shape and the ranges of each field; the day is then checked against the
    month's length (a nested case: PostgreSQL evaluates its branches in order), so 2026-02-30 is null. -#}
{% macro postgres__safe_timestamp(text_expression) -%}
    (case
        when {{ text_expression }} ~ '^\s*[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?)?(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)?\s*$'
            then (case
                when cast(substr(trim({{ text_expression }}), 9, 2) as integer) <= extract(day from
                    make_date(
                        cast(substr(trim({{ text_expression }}), 1, 4) as integer),
                        cast(substr(trim({{ text_expression }}), 6, 2) as integer),
                        1
                    ) + interval '1 month' - interval '1 day')
                    then cast(trim({{ text_expression }}) as timestamp)
            end)
    end)
{%- endmacro %}


{#- The JSON type of `column`.`key` (a literal key) or of `column` itself (key none), the same words on
    every warehouse: object, array, string, number, boolean, null; null when the key is missing. -#}
{% macro json_kind(column, key=none) -%}
    {{ return(adapter.dispatch('json_kind', 'flowhouse')(column, key)) }}
{%- endmacro %}

{#- As json_kind, with the key a SQL expression (a column holding property names). -#}
{% macro json_kind_at(column, key_expression) -%}
    {{ return(adapter.dispatch('json_kind_at', 'flowhouse')(column, key_expression)) }}
{%- endmacro %}

{#- As json_text, with the key a SQL expression. -#}
{% macro json_text_at(column, key_expression) -%}
    {{ return(adapter.dispatch('json_text_at', 'flowhouse')(column, key_expression)) }}
{%- endmacro %}

{% macro flowhouse_duckdb_kind(type_expression) -%}
    (case {{ type_expression }}
        when 'OBJECT' then 'object'
        when 'ARRAY' then 'array'
        when 'VARCHAR' then 'string'
        when 'BOOLEAN' then 'boolean'
        when 'NULL' then 'null'
        when 'BIGINT' then 'number'
        when 'UBIGINT' then 'number'
        when 'DOUBLE' then 'number'
        when 'HUGEINT' then 'number'
    end)
{%- endmacro %}

{% macro default__json_kind(column, key) -%}
    {%- if key is none -%}
        {{ flowhouse.flowhouse_duckdb_kind('json_type(' ~ column ~ ')') }}
    {%- else -%}
        {{ flowhouse.flowhouse_duckdb_kind('json_type(' ~ column ~ ", '$." ~ key ~ "')") }}
    {%- endif -%}
{%- endmacro %}

{% macro postgres__json_kind(column, key) -%}
    {%- if key is none -%}
        jsonb_typeof({{ column }})
    {%- else -%}
        jsonb_typeof({{ column }} -> '{{ key }}')
    {%- endif -%}
{%- endmacro %}

{% macro default__json_kind_at(column, key_expression) -%}
    {{ flowhouse.flowhouse_duckdb_kind('json_type(' ~ column ~ ", '$.' || " ~ key_expression ~ ')') }}
{%- endmacro %}

{% macro postgres__json_kind_at(column, key_expression) -%}
    jsonb_typeof({{ column }} -> {{ key_expression }})
{%- endmacro %}

{% macro default__json_text_at(column, key_expression) -%}
    json_extract_string({{ column }}, '$.' || {{ key_expression }})
{%- endmacro %}

{% macro postgres__json_text_at(column, key_expression) -%}
    ({{ column }} ->> {{ key_expression }})
{%- endmacro %}


{#- The contract's typed properties (event_property_rules(), generated from flowhouse/core/contract.py)
    as a relation: event_type, property, property_type. -#}
{% macro event_property_rules_relation() -%}
    (
        select * from (values
        {%- for rule in flowhouse.event_property_rules() %}
            ('{{ rule[0] }}', '{{ rule[1] }}', '{{ rule[2] }}'){% if not loop.last %},{% endif %}
        {%- endfor %}
        ) as rules (event_type, property, property_type)
    )
{%- endmacro %}


{#- quarantined_events' re-read bound: the newest loaded_at of raw.events when the previous build started
    (quarantined_events_checked), as a timestamp literal the scan prunes on; everything on a full
    build. -#}
{% macro quarantine_since() -%}
    {%- set everything = "cast('1900-01-01 00:00:00' as timestamp)" -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(everything) }}
    {%- endif -%}
    {%- set watermark = adapter.get_relation(
        database=this.database, schema=this.schema, identifier='quarantined_events_checked') -%}
    {%- if watermark is none -%}
        {{ return(everything) }}
    {%- endif -%}
    {%- set query -%}
        select cast(max(checked_through) as {{ dbt.type_string() }}) from {{ watermark }}
    {%- endset -%}
    {%- set since = run_query(query).columns[0].values()[0] -%}
    {{ return(everything if since is none else "cast('" ~ since ~ "' as timestamp)") }}
{%- endmacro %}
