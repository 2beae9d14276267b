-- What the run wrote: events per type, late arrivals, and the loaded_at range.
select
    event_type,
    count(*) as events,
    count(*) filter (where loaded_us - occurred_us > 3600000000) as late_events,
    make_timestamp(min(loaded_us)) as first_loaded_at,
    make_timestamp(max(loaded_us)) as last_loaded_at
from gen_all_events
group by event_type
order by event_type
