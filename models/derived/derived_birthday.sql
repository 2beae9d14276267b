{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('birthday'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- A customer's birthday (customers.birthday), yearly at 00:00 UTC; 29 February falls on 28 February in
    years that are not leap years. Only birthdays while the customer exists (on or after created_at).
    customers is a current-state table, so loaded_at = greatest(the birthday, the row's updated_at), and a
    birthday counts only when the row had not changed more than derive_lookback_hours after the day:
    otherwise the warehouse cannot tell it knew the birthday then (an import, a changed date), and a
    rebuild must not announce past birthdays anew. The incremental bound is on the birthday itself: an
    incremental build emits the birthdays after derived_window_since() less derive_lookback_hours (a
    birthday is decided at most that long after the day), a full build every one since the customer
    was created; as each birthday's verdict depends only on its own row, both
    leave the same rows. -#}
{%- set marks = flowhouse.take_marks(ref('stg_customers'), 'updated_at', through_now=true) %}
{%- set since = flowhouse.derived_window_since() %}

with

customers as (

    select * from {{ ref('stg_customers') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

with_birthday as (

    select customer_id, birthday, created_at, updated_at
    from customers
    where birthday is not null

),

year_bounds as (

    select
        greatest(
            min(extract(year from with_birthday.created_at)),
            extract(year from {{ since }} - {{ var('derive_lookback_hours') }} * interval '1 hour')
        ) as first_year,
        extract(year from max(as_of.now_at)) as last_year
    from with_birthday
    cross join as_of

),

years as (

    select {{ flowhouse.derived_integer_series('first_year', 'last_year') }} as year_number
    from year_bounds

),

birthdays as (

    select
        with_birthday.customer_id,
        with_birthday.birthday,
        with_birthday.created_at,
        with_birthday.updated_at,
        years.year_number,
        {{ flowhouse.derived_yearly_occurrence('with_birthday.birthday', 'years.year_number') }}
            as birthday_at
    from with_birthday
    inner join years
        on years.year_number >= extract(year from with_birthday.created_at)

),

derived as (

    select
        {{ flowhouse.derived_event_id('birthday', ['birthdays.customer_id', 'birthdays.year_number']) }}
            as event_id,
        birthdays.customer_id,
        cast('birthday' as {{ dbt.type_string() }}) as event_type,
        birthdays.birthday_at as occurred_at,
        greatest(birthdays.birthday_at, birthdays.updated_at) as loaded_at,
        {{ flowhouse.json_object_of({
            'birthday': 'cast(birthdays.birthday as ' ~ dbt.type_string() ~ ')',
        }) }} as properties
    from birthdays
    cross join as_of
    where birthdays.birthday_at >= birthdays.created_at
        -- decided after since: on the day, or on a change of the row within the lookback after it
        and birthdays.birthday_at > {{ since }} - {{ var('derive_lookback_hours') }} * interval '1 hour'
        -- known in time: the row did not change more than the lookback after the day
        and birthdays.updated_at
            <= birthdays.birthday_at + {{ var('derive_lookback_hours') }} * interval '1 hour'
        and greatest(birthdays.birthday_at, birthdays.updated_at) <= as_of.now_at

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
