{#- The canonical inputs (docs/events.md): `raw.events`, `raw.customers`, `raw.products`, which
    `flowhouse load` and `flowhouse generate` fill. A store whose data lives in tables of its own maps
    them onto the canonical columns in models of its dbt project and names those models in the var
    `flowhouse_inputs` ({events: ..., customers: ..., products: ...}); flowhouse's staging then reads
    them through ref(), so dbt builds the store's mapping first. -#}
{% macro input(name) -%}
    {%- set mapped = (var('flowhouse_inputs', none) or {}).get(name) -%}
    {%- if mapped -%}
        {{ return(ref(mapped)) }}
    {%- else -%}
        {{ return(source('raw', name)) }}
    {%- endif -%}
{%- endmacro %}
