{#- Helpers for the derived-event models (models/derived/, docs/events.md "Derived events").

    Every model in models/derived follows one recipe, which is what makes its rows independent of how
    often builds run:
    - It reads only what the warehouse knew at the build's now: source rows with loaded_at <= now.
    - A candidate (an activity that may be a cart's last, a view that may end a burst, ...) is judged
      "as of" its decision moment D = greatest(the moment its condition becomes true, the loaded_at of
      the candidate), using only rows loaded by D. The derived event's occurred_at is that moment and its
      loaded_at is D, so every input it used has loaded_at <= its loaded_at.
    - It is emitted once D <= now; per natural key the candidate with the earliest D wins; event ids that
      the model already holds are never written again (derived events are never retracted).
    A candidate's verdict depends only on rows loaded by D, and rows loaded later cannot change it, so a
    build every five minutes and one build at the end emit the same rows. -#}


{#- The derived event types flowhouse ships (docs/events.md; segment_entered, segment_exited and
    tier_changed are built in models/segments). `events` declares a dependency on the model
    `derived_<type>` of each one that is switched on, so dbt builds them first; a derived_* model that is
    not listed here is still unioned (found in the graph) once its table exists. -#}
{% macro derived_event_types() -%}
    {{ return([
        'customer_created', 'cart_abandoned', 'browse_abandoned', 'first_purchase', 'repeat_purchase', 'milestone_order',
        'high_value_order', 'became_inactive', 'purchase_anniversary', 'birthday', 'back_in_stock',
        'price_dropped', 'low_stock', 'replenishment_due', 'subscription_renewal_due',
        'search_without_purchase', 'viewed_product_n_times', 'segment_entered', 'segment_exited',
        'tier_changed', 'coupon_issued',
    ]) }}
{%- endmacro %}


{#- Whether derivation `event_type` runs (dbt var `derive_<event_type>`, default true). Models use it as
    their `enabled` config; switch one off when the store sends that event type raw. -#}
{% macro derived_is_enabled(event_type) -%}
    {{ return(var('derive_' ~ event_type, true) not in [false, 'false', 'False', 0, '0']) }}
{%- endmacro %}


{#- The lower bound (exclusive) on loaded_at of the source rows an incremental build re-reads:
        (max loaded_at already in this model) - (window_minutes + derive_lookback_hours)
    rendered as a timestamp literal, so that warehouses can prune on it. A full build reads everything.

    Why nothing is missed. Let L be the newest loaded_at in the model; every earlier build ran at some
    now >= L. A candidate not emitted yet must have D > L: one with D <= now of an earlier build was
    emitted by it (or lost to an earlier candidate of the same key). D = greatest(occurred_at + window,
    loaded_at) > L means loaded_at > L or occurred_at > L - window; events reach the warehouse after
    they happen (up to derive_lookback_hours of clock skew), so in both cases
    loaded_at > L - window - lookback: the candidate is among the rows re-read (the lookback also covers
    rows committed after a build with a loaded_at that build could have seen). Rows a verdict needs
    beyond that bound (a customer's earlier orders, a cart's earlier lines) are joined for the affected
    keys only. Yearly events bound the occurrence or D itself by derived_since(0) instead. -#}
{% macro derived_since(window_minutes=0) -%}
    {%- set everything = "cast('1900-01-01 00:00:00' as timestamp)" -%}
    {%- if not is_incremental() -%}
        {{ return(everything) }}
    {%- endif -%}
    {%- set query -%}
        select cast(
            max(loaded_at)
            - ({{ window_minutes }} + {{ var('derive_lookback_hours') }} * 60) * interval '1 minute'
            as {{ dbt.type_string() }}
        ) as since
        from {{ this }}
    {%- endset -%}
    {%- set since = run_query(query).columns[0].values()[0] -%}
    {%- if since is none -%}
        {{ return(everything) }}
    {%- endif -%}
    {{ return("cast('" ~ since ~ "' as timestamp)") }}
{%- endmacro %}


{#- The final select of a derived model: the standard columns of the `derived` relation, minus event ids
    the model already holds (an incremental build only appends), and built_at: the now of the build
    that first materialised the row, when it became visible to the engine (core.events.visible_at; the
    engine's watermark, since a row decided at loaded_at only appears at the next build). A full
    rebuild keeps the stamps of the rows the table already held (their loaded_at for rows stamped by
    no build yet), so a rebuild does not show old events to the engine as new. -#}
{% macro derived_new_events(relation) -%}
    {%- set existing = none -%}
    {#- `this` is none in a unit test: there is nothing built to keep stamps from -#}
    {%- if execute and not is_incremental() and this is not none -%}
        {%- set existing = adapter.get_relation(
            database=this.database, schema=this.schema, identifier=this.identifier) -%}
    {%- endif -%}
    select
        {{ relation }}.event_id,
        {{ relation }}.customer_id,
        {{ relation }}.event_type,
        {{ relation }}.occurred_at,
        {{ relation }}.loaded_at,
        {{ relation }}.properties,
        {%- if existing is not none %}
        coalesce(
            existing.{{ 'built_at' if flowhouse.derived_has_built_at(existing) else 'loaded_at' }},
            {{ flowhouse.flowhouse_now() }}
        ) as built_at
    from {{ relation }}
    left join {{ existing }} as existing
        on existing.event_id = {{ relation }}.event_id
        {%- else %}
        {{ flowhouse.flowhouse_now() }} as built_at
    from {{ relation }}
        {%- endif %}
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as existing where existing.event_id = {{ relation }}.event_id
    )
    {%- endif %}
{%- endmacro %}


{#- Whether `relation` (a derived model's table) has the built_at stamp: derived models built before it
    existed, and a derived_* model that does not follow the recipe, do not. -#}
{% macro derived_has_built_at(relation) -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') -%}
    {{ return('built_at' in names) }}
{%- endmacro %}


{#- An aggregate: the JSON array of `expression` over the group, in `order_by` order. -#}
{% macro derived_json_array_agg(expression, order_by) -%}
    {{ return(adapter.dispatch('derived_json_array_agg', 'flowhouse')(expression, order_by)) }}
{%- endmacro %}

{% macro default__derived_json_array_agg(expression, order_by) -%}
    to_json(list({{ expression }} order by {{ order_by }}))
{%- endmacro %}

{% macro postgres__derived_json_array_agg(expression, order_by) -%}
    jsonb_agg({{ expression }} order by {{ order_by }})
{%- endmacro %}


{#- A timestamp as the ISO 8601 UTC string used inside properties: 2026-09-01T10:00:00Z. -#}
{% macro derived_iso_timestamp(expression) -%}
    {{ return(adapter.dispatch('derived_iso_timestamp', 'flowhouse')(expression)) }}
{%- endmacro %}

{% macro default__derived_iso_timestamp(expression) -%}
    strftime({{ expression }}, '%Y-%m-%dT%H:%M:%SZ')
{%- endmacro %}

{% macro postgres__derived_iso_timestamp(expression) -%}
    to_char({{ expression }}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
{%- endmacro %}


{#- A property holding an ISO 8601 UTC timestamp, as a timestamp (null when missing or not a timestamp). -#}
{% macro derived_json_timestamp(column, key) -%}
    {{ flowhouse.safe_timestamp(flowhouse.json_text(column, key)) }}
{%- endmacro %}


{#- The integers start..end (inclusive) as a set-returning select-list expression: use as
    `select {{ derived_integer_series('a', 'b') }} as n from bounds`. -#}
{% macro derived_integer_series(start, end) -%}
    {{ return(adapter.dispatch('derived_integer_series', 'flowhouse')(start, end)) }}
{%- endmacro %}

{% macro default__derived_integer_series(start, end) -%}
    unnest(generate_series(cast({{ start }} as bigint), cast({{ end }} as bigint)))
{%- endmacro %}

{% macro postgres__derived_integer_series(start, end) -%}
    generate_series(cast({{ start }} as bigint), cast({{ end }} as bigint))
{%- endmacro %}


{#- 00:00 UTC of the day with the month and day of `date_expression` in year `year_expression`;
    29 February falls on 28 February in years that are not leap years. -#}
{% macro derived_yearly_occurrence(date_expression, year_expression) -%}
    cast(make_date(
        cast({{ year_expression }} as integer),
        cast(extract(month from {{ date_expression }}) as integer),
        case
            when extract(month from {{ date_expression }}) = 2
                and extract(day from {{ date_expression }}) = 29
                and not (
                    {{ year_expression }} % 4 = 0
                    and ({{ year_expression }} % 100 <> 0 or {{ year_expression }} % 400 = 0)
                )
                then 28
            else cast(extract(day from {{ date_expression }}) as integer)
        end
    ) as timestamp)
{%- endmacro %}


{#- replenishment_due's categories: {category: days until an ordered product runs out}, from the var
    replenishment_days (a null number of days means default_replenishment_days). -#}
{% macro derived_replenishment_days() -%}
    {%- set days = {} -%}
    {%- for category, category_days in (var('replenishment_days', {}) or {}).items() -%}
        {%- do days.update({category: (category_days or var('default_replenishment_days')) | int}) -%}
    {%- endfor -%}
    {{ return(days) }}
{%- endmacro %}


{#- The relations `events` unions: every enabled model of this project named derived_*, by name (execution
    time only; empty while parsing). A model the caller declares as a parent is read through ref(); one it
    does not (not in derived_event_types()) is read directly once its table exists, and skipped with a
    warning on the very first build, before dbt has created it. -#}
{% macro derived_event_relations() -%}
    {%- set relations = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() | sort(attribute='name') -%}
            {%- if node.resource_type == 'model' and node.package_name == model.package_name
                and node.name.startswith('derived_') -%}
                {%- if node.unique_id in model.depends_on.nodes -%}
                    {%- do relations.append(ref(node.name)) -%}
                {%- else -%}
                    {%- set built = adapter.get_relation(
                        database=node.database, schema=node.schema, identifier=node.alias) -%}
                    {%- if built is not none -%}
                        {%- do relations.append(built) -%}
                    {%- else -%}
                        {%- do exceptions.warn(
                            model.name ~ ": " ~ node.name ~ " is not built yet and is left out of this build;"
                            ~ " add its event type to derived_event_types() so dbt builds it first") -%}
                    {%- endif -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(relations) }}
{%- endmacro %}


{#- Catalog events (inventory_changed, price_changed) loaded since the re-read bound and decided by now:
    event_id, occurred_at, decided_at (= greatest(occurred_at, loaded_at)), sku, plus `fields`
    (an ordered mapping of column name -> SQL expression over `events.properties`). -#}
{% macro derived_catalog_changes(event_type, fields) -%}
    select
        events.event_id,
        events.occurred_at,
        greatest(events.occurred_at, events.loaded_at) as decided_at,
        {{ flowhouse.json_text('events.properties', 'sku') }} as sku
        {%- for name, expression in fields.items() %},
        {{ expression }} as {{ name }}
        {%- endfor %}
    from {{ ref('stg_events') }} as events
    cross join (select {{ flowhouse.flowhouse_now() }} as now_at) as as_of
    where events.event_type = '{{ event_type }}'
        and events.loaded_at > {{ flowhouse.derived_since(0) }}
        and greatest(events.occurred_at, events.loaded_at) <= as_of.now_at
{%- endmacro %}


{#- A catalog-derived event (no customer) for each row of `relation`, with `properties` an ordered
    mapping of key -> SQL expression. -#}
{% macro derived_catalog_events(event_type, relation, properties) -%}
    select
        {{ flowhouse.derived_event_id(event_type, ['event_id']) }} as event_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast('{{ event_type }}' as {{ dbt.type_string() }}) as event_type,
        occurred_at,
        decided_at as loaded_at,
        {{ flowhouse.json_object_of(properties) }} as properties
    from {{ relation }}
{%- endmacro %}
