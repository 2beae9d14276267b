{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'quarantined_events'}}}) }}

{#- Events left out of the stream for breaking the event contract (staging.quarantined_events) and still in
    raw.events. A warning, not an error: the build and the cycle go on without them. Fix them at the source
    and delete the raw rows (a corrected row is loaded under a new event_id); the warning then clears. -#}

select quarantined.input, quarantined.field, quarantined.reason, count(*) as quarantined_rows,
    min(quarantined.event_id) as example_event_id
from {{ ref('quarantined_events') }} as quarantined
where exists (
    select 1 from {{ flowhouse.input('events') }} as raw_events
    where raw_events.event_id = quarantined.event_id
)
group by quarantined.input, quarantined.field, quarantined.reason
