-- Expose gen_params (params.sql) as variables, and create the table of generated windows.
set variable seed = (select seed from gen_params);
set variable n_pre = (select n_pre from gen_params);
set variable n_total = (select n_total from gen_params);
set variable first_row_customer = (select first_row_customer from gen_params);
set variable n_products = (select n_products from gen_params);
set variable skus_per_category = (select skus_per_category from gen_params);
set variable origin_us = (select origin_us from gen_params);
set variable store_start_us = (select store_start_us from gen_params);
set variable win_start_us = (select win_start_us from gen_params);
set variable win_end_us = (select win_end_us from gen_params);
set variable load_from_us = (select load_from_us from gen_params);
set variable src_from_us = (select src_from_us from gen_params);
set variable sub_from_us = (select sub_from_us from gen_params);
set variable prior_from_us = (select prior_from_us from gen_params);

create or replace temp table gen_runs (
    run_no integer not null,
    first_customer bigint not null,
    last_customer bigint not null,
    window_start_us bigint not null,
    window_end_us bigint not null
);
