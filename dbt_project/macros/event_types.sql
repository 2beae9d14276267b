{#- `column` is one of the event `types` (a list of event type names): the one way a model or a
    macro filters the events by a list of types.

    DuckDB turns an IN list into a join (or an OR of its values) after the scan, so a filter by a
    list alone reads every event of every type, the wide columns (`properties`) included. A range
    it applies in the scan: `column >= <first> and column <= <last>` of the sorted list, then the
    list, keeps the other types out while it scans (a full read of the rare subscription events at
    1M customers: 9.6 s with the list alone, 3.3 s with the range first; BENCHMARKS.md).

    On PostgreSQL and any other adapter, the list alone: they filter by the list in the scan, and a
    range of texts compares by the database's collation (en_US and ICU order `_` and digits
    unlike the bytes Jinja sorts by), where it could leave a type of the list out. DuckDB compares
    text by its bytes, as the sort here does. -#}
{% macro event_types_in(column, types) -%}
    {%- if types is string or types is mapping or not types -%}
        {{ exceptions.raise_compiler_error(
            "event_types_in(" ~ column ~ "): expected a non-empty list of event types, got "
            ~ (types | string)) }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for type in types | unique(case_sensitive=true) | sort(case_sensitive=true) -%}
        {%- do quoted.append("'" ~ (type | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ return(adapter.dispatch('event_types_in', 'flowhouse')(column, quoted)) }}
{%- endmacro %}

{% macro default__event_types_in(column, quoted) -%}
    {%- if quoted | length == 1 -%}
        {{ return('(' ~ column ~ ' = ' ~ quoted[0] ~ ')') }}
    {%- endif -%}
    {{ return('(' ~ column ~ ' in (' ~ quoted | join(', ') ~ '))') }}
{%- endmacro %}

{% macro duckdb__event_types_in(column, quoted) -%}
    {%- if quoted | length == 1 -%}
        {{ return('(' ~ column ~ ' = ' ~ quoted[0] ~ ')') }}
    {%- endif -%}
    {{ return(
        '(' ~ column ~ ' >= ' ~ quoted[0] ~ ' and ' ~ column ~ ' <= ' ~ quoted[-1]
        ~ ' and ' ~ column ~ ' in (' ~ quoted | join(', ') ~ '))'
    ) }}
{%- endmacro %}
