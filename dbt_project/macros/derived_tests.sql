{#- A derived event cannot be known before it happens: loaded_at (the decision moment) is never earlier than
    occurred_at. Fails on the rows where it is. -#}
{% test derived_known_when_it_happened(model) %}

    select *
    from {{ model }}
    where loaded_at < occurred_at

{% endtest %}
