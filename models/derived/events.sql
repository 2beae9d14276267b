{{ config(materialized='view') }}

{#- The one stream flows read: every raw event (stg_events) and every derived event, with is_derived
    and visible_at, when the row became visible to the engine (its watermark): a raw event's loaded_at
    (stg_events is a view: a loaded row is there at once), a derived event's built_at, the now of the
    build that materialised it, which is later than its loaded_at (its decision moment) when the build
    came after that. A derived_* table without built_at (not built by the recipe) falls back on loaded_at.

    The derived models are found in the dbt graph: every enabled model of flowhouse named derived_* (those
    in models/segments too), so adding a derivation is one new model file. dbt cannot learn a
    model's parents from the graph while it parses (the graph is empty then), so the derivations in
    derived_event_types() that are switched on are declared as parents below; that orders them before
    this view. A derived_* model missing from that list is still unioned once its table exists. -#}
{%- for event_type in flowhouse.derived_event_types() if flowhouse.derived_is_enabled(event_type) %}
-- depends_on: {{ ref('derived_' ~ event_type) }}
{%- endfor %}
{%- set derived_relations = flowhouse.derived_event_relations() %}

with

raw_events as (

    select
        event_id,
        customer_id,
        event_type,
        occurred_at,
        loaded_at,
        properties,
        false as is_derived,
        loaded_at as visible_at
    from {{ ref('stg_events') }}

),

{%- for relation in derived_relations %}

{{ relation.identifier }} as (

    select
        event_id,
        customer_id,
        event_type,
        occurred_at,
        loaded_at,
        properties,
        true as is_derived,
        {%- if flowhouse.derived_has_built_at(relation) %}
        greatest(loaded_at, coalesce(built_at, loaded_at)) as visible_at
        {%- else %}
        loaded_at as visible_at
        {%- endif %}
    from {{ relation }}

),
{%- endfor %}

final as (

    select * from raw_events
    {%- for relation in derived_relations %}
    union all
    select * from {{ relation.identifier }}
    {%- endfor %}

)

select * from final
