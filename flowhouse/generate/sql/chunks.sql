-- Where to cut the run's events into slices of about $slice_rows (whole hours of loaded_at): the first
-- loaded hour of each slice.
with

hours as (

    select loaded_us // 3600000000 as loaded_hour, count(*) as events
    from gen_all_events
    group by loaded_hour

),

running as (

    select loaded_hour, events, sum(events) over (order by loaded_hour) as events_upto
    from hours

)

select min(loaded_hour) * 3600000000 as from_us
from running
group by (events_upto - events) // $slice_rows
order by from_us
