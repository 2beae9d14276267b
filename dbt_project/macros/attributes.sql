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


{#- The build's now as a timestamp literal, for a view that must keep it (customer_attributes): the
    given now, or the newest loaded_at (flowhouse_now()) read once when the model runs. -#}
{% macro now_literal() -%}
    {%- set now = flowhouse.flowhouse_now() -%}
    {%- if not execute or (now | trim).startswith('cast(') -%}
        {{ return(now) }}
    {%- endif -%}
    {%- set found = run_query('select cast(' ~ now ~ ' as ' ~ dbt.type_string() ~ ')').rows[0][0] -%}
    {{ return("cast('" ~ found ~ "' as timestamp)") }}
{%- endmacro %}


{#- A fingerprint of `columns` (expressions) that changes when any of them does: compared between two
    builds of the same warehouse only, never stored as a key. md5 over the values as text (surrogate_key)
    by default; on DuckDB its native hash() of the values, which skips casting every value to text
    (about four times faster over a million customers). -#}
{% macro fingerprint(columns) -%}
    {{ return(adapter.dispatch('fingerprint', 'flowhouse')(columns)) }}
{%- endmacro %}

{% macro default__fingerprint(columns) -%}
    {{ flowhouse.surrogate_key(columns) }}
{%- endmacro %}

{% macro duckdb__fingerprint(columns) -%}
    cast(hash({{ columns | join(', ') }}) as {{ dbt.type_string() }})
{%- endmacro %}


{#- int_customer_attributes: the rows of the CTE `relation` of the customers a build writes (those of
    the CTE `changed`) when incremental (`marks`), else the CTE itself. -#}
{% macro rows_of_written(relation, marks) -%}
    {%- if marks -%}
    (select * from {{ relation }} where customer_id in (select customer_id from changed))
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}
