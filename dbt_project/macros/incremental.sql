{#- Incremental by what changed (docs/engine.md "Incremental models"): the per-order and per-customer
    models a tick refreshes (stg_orders, stg_order_lines, int_customer_orders, int_customer_last_activity,
    int_customer_consent, int_customer_suppression, int_customer_category_affinity, product_interest) are
    `incremental` with `delete+insert` on their key. A build recomputes only the keys with a source row
    that changed since the model's last build, reading the whole history of those keys alone.

    Each row carries two stamps the model writes:
    - loaded_through: the newest loaded_at of the model's source when the build that wrote it ran;
    - refreshed_at: that build's now (flowhouse_now()).
    A key changed when one of its source rows was loaded at or after the newest loaded_through (rows
    loaded since: `>=`, so rows loaded in the same instant as the last seen one are read again, which
    the recomputation makes harmless), or when the build's now passed one of its times: a model "as of
    now" counts a row once occurred_at and loaded_at are at most now, so a row whose time falls between
    the last build's now and this one's enters (or, for a build at an earlier now, leaves) the model with
    no new load. A key that changed is recomputed whole, so a late event (an old occurred_at loaded
    now), a refund of an old order and a replayed event need nothing of their own. What depends on now
    alone (recency, "within N days") is never stored here: it lives in views and in customer_attributes.

    Assumed: loaded_at is when a row reached the warehouse, so a row committed later never carries a
    loaded_at older than one a build already saw (by more than the instant `>=` re-reads). -#}


{#- The watermarks of the model being built, as timestamp literals: {'loaded': ..., 'as_of': ...}; none
    for a full build (first build, --full-refresh, a unit test), and for a table built before the stamps
    existed (a changed model: every key is recomputed, and on_schema_change adds the stamp columns). -#}
{% macro incremental_marks() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- if 'loaded_through' not in names or 'refreshed_at' not in names -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select
            cast(max(loaded_through) as {{ dbt.type_string() }}) as loaded,
            cast(max(refreshed_at) as {{ dbt.type_string() }}) as as_of
        from {{ this }}
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] is none or row[1] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({
        'loaded': "cast('" ~ row[0] ~ "' as timestamp)",
        'as_of': "cast('" ~ row[1] ~ "' as timestamp)",
    }) }}
{%- endmacro %}


{#- The rows of `relation` that changed since the marks: loaded at or after marks.loaded, or with one
    of `time_columns` (the times the model compares with now: occurred_at, loaded_at, ...) between the
    last build's now and this one's (`now`, the build's now expression). One select per condition,
    so that each prunes on its own column; a row may come more than once. -#}
{% macro changed_rows(relation, loaded_column, time_columns, marks, now, where='1 = 1') -%}
    select * from {{ relation }}
    where {{ where }} and {{ loaded_column }} >= {{ marks.loaded }}
    {%- for column in time_columns %}
    union all
    select * from {{ relation }}
    where {{ where }}
        and {{ column }} > least({{ marks.as_of }}, {{ now }})
        and {{ column }} <= greatest({{ marks.as_of }}, {{ now }})
    {%- endfor %}
{%- endmacro %}


{#- The later of two timestamps, either of which may be null (greatest() of a null is null on some
    warehouses). -#}
{% macro later(a, b) -%}
    greatest(coalesce({{ a }}, {{ b }}), coalesce({{ b }}, {{ a }}))
{%- endmacro %}


{#- The earlier of two timestamps, either of which may be null. -#}
{% macro earlier(a, b) -%}
    least(coalesce({{ a }}, {{ b }}), coalesce({{ b }}, {{ a }}))
{%- endmacro %}


{#- The loaded_through stamp of a build: the newest `loaded_column` of `relation` (its rows at or after
    the last mark on an incremental build, which warehouses prune on; the last mark when none is newer). -#}
{% macro loaded_through(relation, loaded_column, marks) -%}
    {%- if marks is none -%}
        (select max({{ loaded_column }}) from {{ relation }})
    {%- else -%}
        coalesce(
            (select max({{ loaded_column }}) from {{ relation }}
             where {{ loaded_column }} >= {{ marks.loaded }}),
            {{ marks.loaded }}
        )
    {%- endif -%}
{%- endmacro %}
