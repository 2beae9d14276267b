-- Every event of the run, whichever table holds it.
create or replace temp view gen_all_events as
select * from gen_step_events_json
union all
select * from gen_order_events_json
union all
select * from gen_events;
