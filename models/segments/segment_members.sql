{{ config(materialized='table') }}

{#- The current members of every segment model (a model whose config has meta.segment), found in the dbt
    graph. The models segments read must be parents of this one (the hints below); a segment reading
    anything else fails the build with the hint to add. -#}
-- depends_on: {{ ref('customer_attributes') }}
-- depends_on: {{ ref('list_members') }}
-- depends_on: {{ ref('stg_customers') }}
-- depends_on: {{ ref('stg_events') }}
{#- A store's segments may read models of its own: the var flowhouse_segment_inputs lists them. #}
{%- for name in var('flowhouse_segment_inputs', none) or [] %}
-- depends_on: {{ ref(name) }}
{%- endfor %}

{%- set segments = flowhouse.segment_models() %}

with

{% for node in segments %}
{{ node.name }} as (

    {{ flowhouse.segment_members_of(node) | indent(4) }}

),

{% endfor %}
members as (

    {% for node in segments -%}
    select customer_id, segment from {{ node.name }}
    {% if not loop.last %}union all
    {% endif %}
    {%- else -%}
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as segment
    where 1 = 0
    {%- endfor %}

),

final as (

    select customer_id, segment from members

)

select * from final
