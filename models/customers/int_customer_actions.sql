{{ config(materialized='table') }}

{#- What flows' warehouse actions did to each customer, as of the build's now, from the engine's
    flowhouse.profile_updates (one row per applied action; held-out and skipped actions are not there):
    - tags: add_tag / remove_tag, the latest action per tag wins (ties: the later update_id);
    - flow_loyalty_points: the sum of loyalty_points awards (negative points deduct);
    - tier_override: the latest change_tier; `tier: auto` clears it (back to the revenue-computed tier).
      An override lasts until a later change_tier replaces or clears it, or until its expires_at (the
      action's expires_in) when it gave one: from then on the revenue-computed tier again. -#}

with

updates as (

    select * from {{ source('flowhouse', 'profile_updates') }}
    where updated_at <= {{ flowhouse.flowhouse_now() }}

),

tag_actions as (

    select
        customer_id,
        name as tag,
        action,
        row_number() over (
            partition by customer_id, name order by updated_at desc, update_id desc
        ) as latest
    from updates
    where action in ('add_tag', 'remove_tag') and name is not null

),

tags as (

    select customer_id, array_agg(tag order by tag) as tags
    from tag_actions
    where latest = 1 and action = 'add_tag'
    group by customer_id

),

points as (

    select
        customer_id,
        sum(cast({{ flowhouse.safe_number('value') }} as bigint)) as flow_loyalty_points
    from updates
    where action = 'loyalty_points'
    group by customer_id

),

tier_actions as (

    select
        customer_id,
        value as tier,
        updated_at,
        expires_at,
        row_number() over (partition by customer_id order by updated_at desc, update_id desc) as latest
    from updates
    where action = 'change_tier'

),

overrides as (

    select
        customer_id,
        tier as tier_override,
        updated_at as tier_override_at,
        expires_at as tier_override_expires_at
    from tier_actions
    where
        latest = 1 and tier is not null and tier <> 'auto'
        and (expires_at is null or expires_at > {{ flowhouse.flowhouse_now() }})

),

customers as (

    select customer_id from tags
    union
    select customer_id from points
    union
    select customer_id from overrides

),

final as (

    select
        customers.customer_id,
        tags.tags,
        points.flow_loyalty_points,
        overrides.tier_override,
        overrides.tier_override_at,
        overrides.tier_override_expires_at
    from customers
    left join tags on tags.customer_id = customers.customer_id
    left join points on points.customer_id = customers.customer_id
    left join overrides on overrides.customer_id = customers.customer_id

)

select * from final
