-- One slice of the run's events, appended to raw.events in loaded_at order.
insert into raw.events
select
    event_id,
    customer_key(customer_num) as customer_id,
    event_type,
    make_timestamp(occurred_us) as occurred_at,
    make_timestamp(loaded_us) as loaded_at,
    properties
from gen_all_events
where loaded_us >= $from_us and loaded_us < $to_us
order by loaded_us, event_id
