{#- A deterministic key: md5 over the parts joined with '|', nulls as ''. Same on every warehouse. -#}
{% macro surrogate_key(parts) -%}
    md5({%- for part in parts -%}
        coalesce(cast({{ part }} as {{ dbt.type_string() }}), ''){% if not loop.last %} || '|' || {% endif %}
    {%- endfor -%})
{%- endmacro %}


{#- The id of a derived event: md5('<event_type>|<natural key parts>'). -#}
{% macro derived_event_id(event_type, parts) -%}
    {{ flowhouse.surrogate_key(["'" ~ event_type ~ "'"] + parts) }}
{%- endmacro %}
