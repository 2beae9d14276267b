{#- The build's "now". flowhouse passes a build's time (a tick's, `flowhouse build --now`) in the environment
    variable FLOWHOUSE_DBT_NOW, an ISO timestamp in UTC, read only when a model runs (`execute`), never while
    dbt parses: dbt's partial parsing stays valid from tick to tick, where a var that changes at every tick
    made dbt re-parse the whole project. var('now') (a plain `dbt build --vars '{now: ...}'`) still wins.
    Neither set: the newest loaded_at in raw.events, so that a build is a function of the data alone, but
    never later than the wall clock when the build started (run_started_at, UTC): a row from the future must
    not stand for "now" (the loader rejects timestamps more than 24 hours ahead; a row loaded before it did
    is capped). -#}
{% macro flowhouse_now() -%}
    {%- set given = var('now', none) or flowhouse.env_now() -%}
    {%- if given -%}
        cast('{{ given }}' as timestamp)
    {%- else -%}
        (select least(
            coalesce(max(loaded_at), cast('1970-01-01' as timestamp)),
            cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
        ) from {{ flowhouse.input('events') }})
    {%- endif -%}
{%- endmacro %}

{#- FLOWHOUSE_DBT_NOW as a timestamp literal ('YYYY-MM-DD HH:MM:SS[.ffffff]'), or none when unset or empty
    or while parsing. A value that is not an ISO timestamp is an error naming it. -#}
{% macro env_now() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set raw = env_var('FLOWHOUSE_DBT_NOW', '') | trim -%}
    {%- if not raw -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set parsed = modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?', raw) -%}
    {%- if not parsed -%}
        {{ exceptions.raise_compiler_error(
            "FLOWHOUSE_DBT_NOW=" ~ raw ~ " is not a build time: expected an ISO timestamp in UTC, "
            ~ "such as 2026-10-01 09:30:00") }}
    {%- endif -%}
    {{ return(raw | replace('T', ' ')) }}
{%- endmacro %}
