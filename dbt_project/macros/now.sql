{#- The build's "now": var('now') when the engine or the user sets it (an ISO timestamp), otherwise the
    newest loaded_at in raw.events, so that a build is a function of the data alone, but never later than
    the wall clock when the build started (run_started_at, UTC): a row from the future must not stand for
    "now" (the loader rejects timestamps more than 24 hours ahead; a row loaded before it did is capped). -#}
{% macro flowhouse_now() -%}
    {%- if var('now', none) -%}
        cast('{{ var("now") }}' as timestamp)
    {%- else -%}
        (select least(
            coalesce(max(loaded_at), cast('1970-01-01' as timestamp)),
            cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
        ) from {{ flowhouse.input('events') }})
    {%- endif -%}
{%- endmacro %}
