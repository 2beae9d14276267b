-- Every event of the run, whichever table holds it. Each table is kept in loaded_at order, so that
-- writing one slice of loaded_at reads only the row groups that hold it.
create or replace temp table gen_events as
select * from gen_events
order by loaded_us;

create or replace temp view gen_all_events as
select * from gen_step_events_json
union all
select * from gen_order_events_json
union all
select * from gen_events;
