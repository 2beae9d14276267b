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


{#- Marks of the derived models that read the event stream by what was loaded since their last build
    (docs/engine.md "Incremental models"): each takes build marks (macros/incremental.sql,
    take_marks, first thing in its SQL, before it reads anything, its candidates' customers and
    spans included), kept in a table of its own named <model>_marks beside it, stamped by its last
    successful build whether or not it derived anything:
    - refreshed_at: that build's now;
    - loaded_through: the newest loaded_at of the event stream it could read (at most its now),
      taken before it read.
    `flowhouse events retract` empties the tables named derived_*, these included, so the next build
    reads the whole stream again.

    Why nothing is missed. A candidate is emitted by the first build whose now reaches its decision
    moment D = greatest(occurred_at + window, loaded_at). One not emitted yet has D > L, the
    loaded_through of the last build (which saw every row loaded up to L, and emitted every
    candidate decided by then): so its loaded_at >= L (`>=`: rows loaded in the same instant as the
    last one seen are read again, harmlessly), or it was loaded before L and occurred after
    L - window. Those are the two selects of derived_window_rows, each a literal bound a warehouse
    prunes on (raw.events is appended in load order, and occurred_at follows it closely). What a
    verdict needs beyond the candidate rows is read by derived_lookback_rows: the rows that occurred
    within the span the derivation looks at around the candidates (literals from their times), or a
    customer's rows of any time where a derivation counts over the whole history. Assumed, as for
    the models incremental by what changed: a row committed later never carries a loaded_at older
    than one a build already saw. -#}


{#- A timestamp text ('YYYY-MM-DD HH:MM:SS[.ffffff]') moved by `minutes`, as a timestamp literal. -#}
{% macro derived_shifted(text, minutes) -%}
    {%- set moment = modules.datetime.datetime.fromisoformat(text | string) -%}
    {%- set moved = moment + modules.datetime.timedelta(minutes=minutes) -%}
    {{ return("cast('" ~ moved.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "' as timestamp)") }}
{%- endmacro %}


{#- The candidate rows of a derivation whose decision moment is greatest(occurred_at + window,
    loaded_at): the rows of stg_events that `where` keeps, loaded by the build's now, and with marks
    only those that may decide after the last build's loaded_through L: loaded at or after L, or
    loaded before it and occurred after L - window. Two disjoint selects, each pruned on its own
    column; every row known at now on a full build. -#}
{% macro derived_window_rows(where, window_minutes, marks, columns='*') -%}
    select {{ columns }} from {{ ref('stg_events') }}
    where {{ where }}
        and loaded_at <= {{ flowhouse.flowhouse_now() }}
    {%- if marks is not none %}
        and loaded_at >= {{ marks.loaded }}
    union all
    select {{ columns }} from {{ ref('stg_events') }}
    where {{ where }}
        and loaded_at <= {{ flowhouse.flowhouse_now() }}
        and loaded_at < {{ marks.loaded }}
        and occurred_at > {{ flowhouse.derived_shifted(marks.loaded_text, -(window_minutes | int)) }}
    {%- endif %}
{%- endmacro %}


{#- The span of occurred_at the candidates of `where` (derived_window_rows) cover, widened by
    `before_minutes` and `after_minutes`: {'from': literal, 'to': literal} for derived_lookback_rows;
    none with no marks (a full build reads every row) and {'from': ..., 'to': ...} an empty span when
    there is no candidate. -#}
{% macro derived_candidate_span(where, window_minutes, marks, before_minutes, after_minutes) -%}
    {%- if marks is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select cast(min(occurred_at) as {{ dbt.type_string() }}),
            cast(max(occurred_at) as {{ dbt.type_string() }})
        from ({{ flowhouse.derived_window_rows(where, window_minutes, marks, 'occurred_at') }}) as candidates
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] is none -%}
        {{ return({'from': "cast('2999-01-01' as timestamp)", 'to': "cast('1900-01-01' as timestamp)"}) }}
    {%- endif -%}
    {{ return({
        'from': flowhouse.derived_shifted(row[0], -(before_minutes | int)),
        'to': flowhouse.derived_shifted(row[1], after_minutes | int),
    }) }}
{%- endmacro %}


{#- A condition that `column` is one of the customers of the candidates of `where` (derived_window_rows),
    written out as a list of literals, so that the warehouse filters while it scans and reads the
    other columns of the matching rows only; `fallback` (a condition) with no marks, or when the
    candidates have more than `limit` customers. -#}
{% macro derived_candidate_customers(column, where, window_minutes, marks, fallback, limit=20000) -%}
    {%- if marks is none -%}
        {{ return(fallback) }}
    {%- endif -%}
    {%- set query -%}
        select distinct customer_id
        from ({{ flowhouse.derived_window_rows(where, window_minutes, marks, 'customer_id') }}) as candidates
        where customer_id is not null
        limit {{ limit + 1 }}
    {%- endset -%}
    {%- set customers = run_query(query).columns[0].values() -%}
    {%- if customers | length > limit -%}
        {{ return(fallback) }}
    {%- elif customers | length == 0 -%}
        {{ return('1 = 0') }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for customer in customers | sort -%}
        {%- do quoted.append("'" ~ (customer | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ return(column ~ ' in (' ~ quoted | join(', ') ~ ')') }}
{%- endmacro %}


{#- The rows of stg_events that `where` keeps, loaded by the build's now, that occurred within `span`
    (derived_candidate_span; every such row with none): what the verdicts of the candidates look at
    around them. -#}
{% macro derived_lookback_rows(where, span, columns='*') -%}
    select {{ columns }} from {{ ref('stg_events') }}
    where {{ where }}
        and loaded_at <= {{ flowhouse.flowhouse_now() }}
    {%- if span is not none %}
        and occurred_at >= {{ span['from'] }}
        and occurred_at <= {{ span['to'] }}
    {%- endif %}
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


{#- Catalog events (inventory_changed, price_changed) that may decide after the model's last build
    (derived_window_rows) and are decided by now: event_id, occurred_at, decided_at
    (= greatest(occurred_at, loaded_at)), sku, plus `fields` (an ordered mapping of column name -> SQL
    expression over `events.properties`); `marks`: what the model's take_marks returned. -#}
{% macro derived_catalog_changes(event_type, fields, marks) -%}
    select
        events.event_id,
        events.occurred_at,
        greatest(events.occurred_at, events.loaded_at) as decided_at,
        {{ flowhouse.json_text('events.properties', 'sku') }} as sku
        {%- for name, expression in fields.items() %},
        {{ expression }} as {{ name }}
        {%- endfor %}
    from ({{ flowhouse.derived_window_rows(
        "event_type = '" ~ event_type ~ "'", 0, marks,
        'event_id, occurred_at, loaded_at, properties'
    ) }}) as events
    cross join (select {{ flowhouse.flowhouse_now() }} as now_at) as as_of
    where greatest(events.occurred_at, events.loaded_at) <= as_of.now_at
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
