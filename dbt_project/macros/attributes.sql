{#- The columns of a store's attribute model (`relation`, joined as `alias`) but customer_id, each as
    `, alias.column`: known once the model is built (nothing while dbt parses). -#}
{% macro attribute_columns(relation, alias) -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- if column.name | lower != 'customer_id' %},
    {{ alias }}.{{ adapter.quote(column.name) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
