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
    never: became_inactive in a store younger than its days), so the re-read would grow. Each of the
    models below takes build marks (macros/incremental.sql, take_marks: first thing in its SQL, before
    it reads) of the newest loaded_at it can see, L (at most its now; for the models of orders and
    subscriptions the loaded_through of int_order_placements / int_subscription_events, what those
    had read): it judges every candidate decided by L on the rows loaded by then, so the next build
    judges those decided after L (rows loaded later than L are read whenever they were committed: a
    build at a later now with nothing new, then events loaded before that now, misses nothing). A
    full build ignores the mark; `flowhouse events retract` empties the derived tables and their
    marks alike. -#}


{#- The lower bound (exclusive) of the decision moments an incremental build judges, as a literal:
    the later of derived_since(0) and the newest loaded_at the model's last build saw (it judged
    every candidate decided by then, on the rows loaded by then, which the watermark of the
    incremental models assumes were all visible to it: docs/engine.md "Incremental models");
    everything on a full build. -#}
{% macro derived_window_since() -%}
    {%- set since = flowhouse.derived_since(0) -%}
    {%- set last = flowhouse.build_marks() -%}
    {%- if last is none -%}
        {{ return(since) }}
    {%- endif -%}
    {%- if since == flowhouse.derived_everything() -%}
        {{ return(last.loaded) }}
    {%- endif -%}
    {{ return("greatest(" ~ since ~ ", " ~ last.loaded ~ ")") }}
{%- endmacro %}
