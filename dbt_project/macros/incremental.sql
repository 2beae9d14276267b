{#- Incremental by what changed (docs/engine.md "Incremental models"): the per-order and per-customer
    models a tick refreshes (stg_orders, stg_order_lines, int_customer_orders, int_customer_last_activity,
    int_customer_consent, int_customer_suppression, int_customer_category_affinity, product_interest) are
    `incremental` with `delete+insert` on their key, and a build writes only the keys with a changed
    source row: the models of latest times merge the changed rows into the row they had, the others
    recompute each changed key from that key's whole history.

    Each row carries two stamps the model writes:
    - loaded_through: the newest loaded_at of the model's source when the build that wrote it ran;
    - refreshed_at: that build's now (flowhouse_now()).
    A row changed when it was loaded at or after the newest loaded_through (`>=`: rows loaded in the
    same instant as the last one seen are read again, harmlessly), or when the build's now passed one
    of its times: a model "as of now" counts a row once occurred_at and loaded_at are at most now, so
    a row whose time falls between the last build's now and this one's enters the model with no new
    load. So a late event (an old occurred_at loaded now), a refund of an old order and a replayed
    event need nothing of their own. What depends on now alone (recency, "within N days") is never
    stored here: it lives in views and in customer_attributes.

    Assumed: loaded_at is when a row reached the warehouse, so a row committed later never carries a
    loaded_at older than one a build already saw (by more than the instant `>=` re-reads). -#}


{#- The watermarks of the model being built, and the build's now, as timestamp literals (so that
    warehouses prune on them): {'loaded': ..., 'as_of': ..., 'now': ...}; none
    for a full build: the first build, --full-refresh, a unit test, a table built before the stamps
    existed (a changed model: every key is recomputed, and on_schema_change adds the stamp columns),
    and a build at an earlier now than the table's (forget_when_now_went_back empties it first). An empty
    table takes the marks kept beside it (kept_marks), for the models whose hooks keep them. -#}
{% macro incremental_marks() -%}
    {%- if not flowhouse.has_stamps() or flowhouse.now_went_back() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select
            cast(max(loaded_through) as {{ dbt.type_string() }}) as loaded,
            cast(max(refreshed_at) as {{ dbt.type_string() }}) as as_of,
            cast({{ flowhouse.flowhouse_now() }} as {{ dbt.type_string() }}) as now_at
        from {{ this }}
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] is none or row[1] is none -%}
        {%- set row = flowhouse.kept_marks() -%}
    {%- endif -%}
    {%- if row is none or row[0] is none or row[1] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({
        'loaded': "cast('" ~ row[0] ~ "' as timestamp)",
        'as_of': "cast('" ~ row[1] ~ "' as timestamp)",
        'now': "cast('" ~ row[2] ~ "' as timestamp)",
    }) }}
{%- endmacro %}


{#- The marks of a model whose table is empty (a store with no bounce, no subscription, no refund yet), from
    the table <model>_marks its hooks keep (marks_table, take_marks, keep_marks): without them an
    empty table would be built in full at every build. A row (loaded, as_of, now), or none (also when the
    build's now is earlier than the kept one's). -#}
{% macro kept_marks() -%}
    {%- set kept = adapter.get_relation(
        database=this.database, schema=this.schema, identifier=this.identifier ~ '_marks') -%}
    {%- if kept is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select
            cast(max(loaded_through) as {{ dbt.type_string() }}),
            cast(max(refreshed_at) as {{ dbt.type_string() }}),
            cast({{ flowhouse.flowhouse_now() }} as {{ dbt.type_string() }})
        from {{ kept }}
        where refreshed_at is not null
        having max(refreshed_at) <= {{ flowhouse.flowhouse_now() }}
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {{ return(rows[0] if rows | length > 0 else none) }}
{%- endmacro %}


{#- Pre-hooks of a model that may hold no row: its table of kept marks, <model>_marks (one per model, so
    that models built at once never write the same table; with a loaded_through column: `flowhouse
    events retract` empties it with the models, and the next build is a full one), then, before the
    model reads, the newest `column` of `relation` at or after the model's mark (a pruned read) as a
    pending mark. The post-hooks make it the model's mark, with the build's now, once the build
    succeeded. A row loaded during the build carries a loaded_at at or after it (the assumption above),
    so the next build reads it. -#}
{% macro marks_table() -%}
    create table if not exists {{ this.schema }}.{{ this.identifier }}_marks (
        loaded_through timestamp,
        refreshed_at timestamp
    )
{%- endmacro %}


{% macro take_marks(relation, column) -%}
    {%- set marks = flowhouse.incremental_marks() -%}
    insert into {{ this.schema }}.{{ this.identifier }}_marks (loaded_through)
    select
    {%- if marks %}
        coalesce(
            (select max({{ column }}) from {{ relation }} where {{ column }} >= {{ marks.loaded }}),
            {{ marks.loaded }}
        )
    {%- else %}
        (select max({{ column }}) from {{ relation }})
    {%- endif %}
{%- endmacro %}


{#- The post-hooks of take_marks: the marks of earlier builds go, and the pending one becomes the
    model's, with the build's now. -#}
{% macro forget_kept_marks() -%}
    delete from {{ this.schema }}.{{ this.identifier }}_marks where refreshed_at is not null
{%- endmacro %}


{% macro keep_marks() -%}
    update {{ this.schema }}.{{ this.identifier }}_marks
    set refreshed_at = {{ flowhouse.flowhouse_now() }}
    where refreshed_at is null
{%- endmacro %}


{#- Whether the model is built incrementally onto a table with the stamps. -#}
{% macro has_stamps() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {{ return('loaded_through' in names and 'refreshed_at' in names) }}
{%- endmacro %}


{#- Whether the build's now is earlier than the now of the table's last build: rows it counted may not
    count any more, and a key may have no row left, so the build recomputes every key. -#}
{% macro now_went_back() -%}
    {%- if not flowhouse.has_stamps() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select count(*) from {{ this }}
        having max(refreshed_at) > {{ flowhouse.flowhouse_now() }}
    {%- endset -%}
    {{ return(run_query(query).rows | length > 0) }}
{%- endmacro %}


{#- A pre-hook of every model incremental by what changed: a build at an earlier now than the table's
    starts from an empty table (incremental_marks makes it compute every key). -#}
{% macro forget_when_now_went_back() -%}
    {%- if flowhouse.now_went_back() -%}
        delete from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#- A post-hook of customer_attributes: a customer who left the customers input (a store's own
    customers relation may delete rows) loses their row, as a full build would leave them none. -#}
{% macro forget_customers_gone() -%}
    {%- if flowhouse.has_stamps() -%}
        delete from {{ this }}
        where customer_id not in (
            select customer_id from {{ ref('stg_customers') }} where customer_id is not null
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#- A post-hook of int_customer_push: a customer left with no usable device token and no push or onsite
    consent event loses the row, as a full build would leave them none. -#}
{% macro forget_push_customers_gone() -%}
    {%- if flowhouse.has_stamps() -%}
        delete from {{ this }}
        where push_token_count = 0 and last_consent_event_at is null
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#- The input of a model incremental by what changed: the rows of `relation` (those `where` keeps) known
    at the build's now (each of `known` at most now) that changed since the marks: loaded at or after
    marks.loaded, or with one of `time_columns` (the times the model compares with now: occurred_at,
    loaded_at, ...) after the last build's now and at most this one's. With no marks (a full build,
    a build at an earlier now) every such row. One select per condition, so that each prunes on its
    own column; a row may come more than once. -#}
{% macro changed_rows(relation, loaded_column, time_columns, marks, where='1 = 1', known=[]) -%}
    {%- set known_now -%}
        {%- for column in known %} and {{ column }} <= {{ flowhouse.flowhouse_now() }}{% endfor -%}
    {%- endset -%}
    {%- if marks is none -%}
    select * from {{ relation }}
    where {{ where }}{{ known_now }}
    {%- else -%}
    select * from {{ relation }}
    where {{ where }}{{ known_now }} and {{ loaded_column }} >= {{ marks.loaded }}
    {%- for column in time_columns %}
    union all
    select * from {{ relation }}
    where {{ where }}{{ known_now }} and {{ column }} > {{ marks.as_of }} and {{ column }} <= {{ marks.now }}
    {%- endfor %}
    {%- endif -%}
{%- endmacro %}


{#- The keys (`key`) with a changed row in any of `sources`, for a model that recomputes each changed
    key from its whole history: each source a dict of changed_rows' arguments (relation, loaded,
    times, and an optional where). No key with no marks: rows_of_changed_keys then reads every row. -#}
{% macro changed_keys(key, sources, marks) -%}
    {%- if marks is none -%}
    select {{ key }} from {{ sources[0].relation }} where 1 = 0
    {%- else -%}
    {%- for source in sources %}
    {%- if not loop.first %}
    union
    {% endif -%}
    select {{ key }}
    from ({{ flowhouse.changed_rows(
        source.relation, source.loaded, source.times, marks, source.get('where', '1 = 1')
    ) }}) as changed_{{ loop.index }}
    {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#- The whole history of the changed keys: the rows of `relation` (those `where` keeps) known at the
    build's now (each of `known` at most now) whose `key` is in the relation named `changed` (a CTE
    of changed_keys); every such row with no marks. -#}
{% macro rows_of_changed_keys(relation, key, changed, marks, where='1 = 1', known=[]) -%}
    select * from {{ relation }}
    where {{ where }}
    {%- for column in known %} and {{ column }} <= {{ flowhouse.flowhouse_now() }}{% endfor %}
    {%- if marks is not none %}
        and {{ key }} in (select {{ key }} from {{ changed }})
    {%- endif -%}
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
