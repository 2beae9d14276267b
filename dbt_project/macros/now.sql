{#- The build's "now": var('now') when the engine or the user sets it (an ISO timestamp), otherwise the
    newest loaded_at in raw.events, so that a build is a function of the data alone. -#}
{% macro flowhouse_now() -%}
    {%- if var('now', none) -%}
        cast('{{ var("now") }}' as timestamp)
    {%- else -%}
        (select coalesce(max(loaded_at), cast('1970-01-01' as timestamp)) from {{ flowhouse.input('events') }})
    {%- endif -%}
{%- endmacro %}
