{#- The current members of every list: the lists int_customer_lists (incremental by what changed)
    says a customer is in. -#}

with

lists as (

    select * from {{ ref('int_customer_lists') }}

),

final as (

    select
        customer_id,
        list_name,
        joined_at
    from lists
    where is_member

)

select * from final
