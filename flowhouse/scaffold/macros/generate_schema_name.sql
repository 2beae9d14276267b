{#- Models land in the schema their folder names (staging, core, marts, ...): flowhouse's engine and
    the BI tools read fixed schema names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ flowhouse.generate_schema_name(custom_schema_name, node) }}
{%- endmacro %}
