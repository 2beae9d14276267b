{#- Models land in the schema their folder names (staging, core, marts), not "<target>_<name>":
    the engine and BI tools read fixed schema names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
