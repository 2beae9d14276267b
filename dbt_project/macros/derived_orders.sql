{#- The orders behind first_purchase, repeat_purchase, milestone_order and high_value_order: the rows of
    int_order_placements that are an order's first placement (order_number: the order's rank among the
    customer's orders in the order the warehouse learned of them, so the numbers are final and every
    customer has exactly one first purchase even when an earlier order arrives late), decided after
    `since` (loaded after it, or placed after it) and loaded by the build's now. int_order_placements
    is appended in load order, so each bound prunes. -#}
{% macro derived_numbered_orders(since) -%}
    {%- set now = flowhouse.flowhouse_now() -%}
    select *
    from {{ ref('int_order_placements') }}
    where order_number is not null
        and loaded_at > {{ since }}
        and loaded_at <= {{ now }}
    union all
    -- loaded earlier but placed after `since` (a clock ahead of the loader's): decided now
    select *
    from {{ ref('int_order_placements') }}
    where order_number is not null
        and occurred_at > {{ since }}
        and occurred_at <= {{ now }}
        and loaded_at <= {{ since }}
{%- endmacro %}


{#- derived_since's bound on a full build (or an empty table): everything. -#}
{% macro derived_everything() -%}
    {{ return("cast('1900-01-01 00:00:00' as timestamp)") }}
{%- endmacro %}


{#- became_inactive's lower bound (exclusive) on the occurred_at of the history it judges its few
    leftover candidates against, as a timestamp literal: the earliest activity a candidate can have,
    `since - days`, or the earliest late activity (loaded since `since`, occurred before that), read
    with one pruned query. `activity` is the predicate of an activity event on stg_events. -#}
{% macro derived_inactive_scan_since(since, now, days, activity) -%}
    {%- set earliest = since ~ " - " ~ days ~ " * interval '1 day'" -%}
    {%- if not execute -%}
        {{ return(earliest) }}
    {%- endif -%}
    {%- set query -%}
        select cast(min(occurred_at) as {{ dbt.type_string() }})
        from {{ ref('stg_events') }}
        where {{ activity }}
            and loaded_at > {{ since }}
            and loaded_at <= {{ now }}
            and occurred_at <= {{ earliest }}
    {%- endset -%}
    {%- set late = run_query(query).columns[0].values()[0] -%}
    {%- if late is none -%}
        {{ return(earliest) }}
    {%- endif -%}
    {#- exclusive bound: a second before the earliest late activity -#}
    {{ return("cast('" ~ late ~ "' as timestamp) - interval '1 second'") }}
{%- endmacro %}


{#- The last build of a derived model, whether or not it derived anything. derived_since bounds the
    re-read by the newest derived event, which stays in the past while a type is rarely derived (or
    never: became_inactive in a store younger than its days), so the re-read would grow. Every build
    of the models below records its now in `derived_build_marks` (a post-hook, so only a build that
    succeeded), beside the derived tables, with the newest loaded_at it saw, L (at most N): it
    judged every candidate decided by L on the rows loaded by then, so the next build judges those
    decided after L (rows loaded later than L are read whenever they were committed: a build at a
    later now with nothing new, then events loaded before that now, misses nothing). A full build
    ignores the mark; `flowhouse events retract` empties the derived tables and this one alike. -#}
{% macro derived_build_marks() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier='derived_build_marks')) }}
{%- endmacro %}


{#- The post-hooks of a derived model that records its builds (rendered when the model runs). -#}
{% macro derived_mark_build() -%}
    {{ return([
        "{{ flowhouse.derived_mark_statement('delete') }}",
        "{{ flowhouse.derived_mark_statement('insert') }}",
    ]) }}
{%- endmacro %}

{#- The table, created before any model runs (on-run-start: models running side by side must not
    race to create it). -#}
{% macro derived_build_marks_table() -%}
    create schema if not exists core;
    create table if not exists core.derived_build_marks (
        model_name {{ dbt.type_string() }}, built_at timestamp, loaded_through timestamp
    );
    alter table core.derived_build_marks add column if not exists loaded_through timestamp
{%- endmacro %}

{% macro derived_mark_statement(step) -%}
    {%- set marks = flowhouse.derived_build_marks() -%}
    {%- if step == 'delete' -%}
        delete from {{ marks }} where model_name = '{{ this.identifier }}'
    {%- else -%}
        {%- set now = flowhouse.flowhouse_now() -%}
        {%- set last = flowhouse.derived_last_build() -%}
        insert into {{ marks }} (model_name, built_at, loaded_through)
        select '{{ this.identifier }}', {{ now }}, (
            select max(loaded_at) from {{ flowhouse.input('events') }}
            where loaded_at <= {{ now }}
            {%- if last is not none %} and loaded_at >= cast('{{ last }}' as timestamp){% endif %}
        )
    {%- endif -%}
{%- endmacro %}


{#- The newest loaded_at the model's last build saw (at most its now), recorded in
    derived_build_marks, as a string, or none (a full build, no mark). -#}
{% macro derived_last_build() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marks = adapter.get_relation(
        database=this.database, schema=this.schema, identifier='derived_build_marks') -%}
    {%- if marks is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select cast(max(loaded_through) as {{ dbt.type_string() }})
        from {{ marks }}
        where model_name = '{{ this.identifier }}'
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}


{#- The marks of int_order_placements and int_subscription_events (incremental_marks): an empty
    table has no stamps, so a store without such events would read the whole stream at every build;
    then the events loaded since its last build are read instead. -#}
{% macro derived_state_marks() -%}
    {%- set marks = flowhouse.incremental_marks() -%}
    {%- if marks is not none or not flowhouse.has_stamps() or flowhouse.now_went_back() -%}
        {{ return(marks) }}
    {%- endif -%}
    {%- set last = flowhouse.derived_last_build() -%}
    {%- if last is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since = "cast('" ~ last ~ "' as timestamp)" -%}
    {{ return({'loaded': since, 'as_of': since, 'now': flowhouse.flowhouse_now()}) }}
{%- endmacro %}


{#- The lower bound (exclusive) of the decision moments an incremental build judges, as a literal:
    the later of derived_since(0) and the newest loaded_at the model's last build saw (it judged
    every candidate decided by then, on the rows loaded by then, which the watermark of the
    incremental models assumes were all visible to it: docs/engine.md "Incremental models");
    everything on a full build. -#}
{% macro derived_window_since() -%}
    {%- set since = flowhouse.derived_since(0) -%}
    {%- set last = flowhouse.derived_last_build() -%}
    {%- if last is none -%}
        {{ return(since) }}
    {%- endif -%}
    {%- set marked = "cast('" ~ last ~ "' as timestamp)" -%}
    {%- if since == flowhouse.derived_everything() -%}
        {{ return(marked) }}
    {%- endif -%}
    {{ return("greatest(" ~ since ~ ", " ~ marked ~ ")") }}
{%- endmacro %}
