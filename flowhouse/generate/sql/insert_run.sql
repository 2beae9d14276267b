-- One generated window (bound parameters), so customers created in it get their created_at.
insert into gen_runs values ($run_no, $first_customer, $last_customer, $window_start_us, $window_end_us)
