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
    table takes the marks kept beside it (kept_marks), for the models that take build marks (take_marks). -#}
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


{#- Build marks: the marks of a model's last successful build, kept beside it in a table of its own,
    <model>_marks (loaded_through, refreshed_at), so that a model whose table says nothing of them (an
    empty state table: a store with no bounce, no subscription, no refund yet; a derived event type
    rarely or never derived) is not read in full again at every build. One mechanism for every model
    that keeps them (docs/engine.md "Incremental models"):
    - take_marks, called first thing in the model's SQL, so BEFORE the model reads anything (its
      compile-time queries included: the candidates' customers and spans of the derived events are
      read while the model compiles): it returns the previous marks, and records a pending mark, the
      newest `column` of `relation` (at or after the previous mark, a pruned read; at most the
      build's now for a model that reads only what was loaded by then), with no refreshed_at, in
      the table it creates when missing (one per model, so that models built side by side never
      create nor write the same table);
    - the post-hooks (marks_post_hooks), once the model was built: the marks of earlier builds go and
      the pending mark becomes the model's, with the build's now. A failed build leaves at most a
      pending mark (rolled back with it where the warehouse does), which the next build deletes.
    Taken before the read, a mark never claims a row the model did not read: a row a loader commits
    while the model runs carries a loaded_at at or after the mark (the assumption above), so the next
    build reads it. (A mark computed after the read would also cover the rows committed in between,
    and the next build, reading from it, would skip those with an older loaded_at.)
    The table has a loaded_through column: `flowhouse events retract` empties it with the models,
    and the next build is a full one. A missing table (a store built before marks existed) or an
    empty one means a full read. -#}
{% macro marks_relation() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier=this.identifier ~ '_marks')) }}
{%- endmacro %}


{#- The previous marks of the model being built (none for a full build): the table's own stamps
    (incremental_marks) for a model that has them, else its kept marks (build_marks); and, on a
    `dbt run` or `dbt build`, the pending mark of this build, taken now: call it before the model
    reads anything. `relation` and `column`: what the mark is the newest of; `through_now`: at most
    the build's now. -#}
{% macro take_marks(relation, column='loaded_at', through_now=false) -%}
    {%- if not execute or this is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marks = flowhouse.incremental_marks() -%}
    {%- if marks is none and not flowhouse.has_stamps() -%}
        {%- set marks = flowhouse.build_marks() -%}
    {%- endif -%}
    {%- if flags.WHICH in ['run', 'build', 'retry'] -%}
        {%- set bound -%}
            {%- if through_now %} and {{ column }} <= {{ flowhouse.flowhouse_now() }}{% endif -%}
        {%- endset -%}
        {%- set pending -%}
            insert into {{ flowhouse.marks_relation() }} (loaded_through)
            select
            {%- if marks %}
                coalesce(
                    (select max({{ column }}) from {{ relation }}
                     where {{ column }} >= {{ marks.loaded }}{{ bound }}),
                    {{ marks.loaded }}
                )
            {%- else %}
                (select max({{ column }}) from {{ relation }} where 1 = 1{{ bound }})
            {%- endif %}
        {%- endset -%}
        {%- do run_query(flowhouse.marks_table()) -%}
        {%- do run_query('delete from ' ~ flowhouse.marks_relation() ~ ' where refreshed_at is null') -%}
        {%- do run_query(pending) -%}
    {%- endif -%}
    {{ return(marks) }}
{%- endmacro %}


{#- The post-hooks of a model that takes marks, for its config. -#}
{% macro marks_post_hooks() -%}
    {{ return([
        "{{ flowhouse.between_read_and_marks() }}",
        "{{ flowhouse.forget_kept_marks() }}",
        "{{ flowhouse.keep_marks() }}",
    ]) }}
{%- endmacro %}


{% macro marks_table() -%}
    create table if not exists {{ flowhouse.marks_relation() }} (
        loaded_through timestamp,
        refreshed_at timestamp
    )
{%- endmacro %}


{#- A post-hook for tests only: the statement the dbt var `test_between_read_and_marks` (a mapping of
    model name -> SQL) gives for the model being built, run after the model and before its marks are
    kept (a loader committing rows while the model runs). -#}
{% macro between_read_and_marks() -%}
    {%- set statements = var('test_between_read_and_marks', none) or {} -%}
    {%- if this is not none and this.identifier in statements -%}
        {{ statements[this.identifier] }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#- The post-hooks of take_marks: the marks of earlier builds go, and the pending one becomes the
    model's, with the build's now. -#}
{% macro forget_kept_marks() -%}
    delete from {{ flowhouse.marks_relation() }} where refreshed_at is not null
{%- endmacro %}


{% macro keep_marks() -%}
    update {{ flowhouse.marks_relation() }}
    set refreshed_at = {{ flowhouse.flowhouse_now() }}
    where refreshed_at is null
{%- endmacro %}


{#- The kept marks of the model's last successful build, as a row (loaded, as_of, now) of timestamp
    texts, or none: no table, no mark, or a build at an earlier now than the kept one's. -#}
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


{#- The kept marks of an incremental build of a model without stamps (the derived events), for its
    select: {'loaded': literal, 'loaded_text': text, 'as_of': literal, 'now': literal}; none for a
    full build (the first build, --full-refresh, a unit test, no mark kept, an earlier now): then the
    model reads everything. -#}
{% macro build_marks() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set row = flowhouse.kept_marks() -%}
    {%- if row is none or row[0] is none or row[1] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({
        'loaded': "cast('" ~ row[0] ~ "' as timestamp)",
        'loaded_text': row[0],
        'as_of': "cast('" ~ row[1] ~ "' as timestamp)",
        'now': "cast('" ~ row[2] ~ "' as timestamp)",
    }) }}
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
    the last mark on an incremental build, which warehouses prune on; the last mark when none is newer);
    with `through_now`, at most the build's now (a model that reads only the rows loaded by then). -#}
{% macro loaded_through(relation, loaded_column, marks, through_now=false) -%}
    {%- set bound -%}
        {%- if through_now %} and {{ loaded_column }} <= {{ flowhouse.flowhouse_now() }}{% endif -%}
    {%- endset -%}
    {%- if marks is none -%}
        (select max({{ loaded_column }}) from {{ relation }} where 1 = 1{{ bound }})
    {%- else -%}
        coalesce(
            (select max({{ loaded_column }}) from {{ relation }}
             where {{ loaded_column }} >= {{ marks.loaded }}{{ bound }}),
            {{ marks.loaded }}
        )
    {%- endif -%}
{%- endmacro %}


{#- The stamps of a build as a one-row select (refreshed_at: its now; loaded_through: loaded_through()),
    for a model to cross join onto the rows it writes. -#}
{% macro stamps(relation, loaded_column, marks, through_now=false) -%}
    select
        {{ flowhouse.flowhouse_now() }} as refreshed_at,
        {{ flowhouse.loaded_through(relation, loaded_column, marks, through_now) }} as loaded_through
{%- endmacro %}
