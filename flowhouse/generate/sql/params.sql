-- The run's parameters, bound by the caller (named parameters), then exposed as variables.
create or replace temp table gen_params as
select
    $seed::bigint as seed,
    $n_pre::bigint as n_pre,
    $n_total::bigint as n_total,
    $first_row_customer::bigint as first_row_customer,
    $n_products::bigint as n_products,
    $skus_per_category::bigint as skus_per_category,
    $origin_us::bigint as origin_us,
    $store_start_us::bigint as store_start_us,
    $win_start_us::bigint as win_start_us,
    $win_end_us::bigint as win_end_us,
    $load_from_us::bigint as load_from_us,
    $src_from_us::bigint as src_from_us,
    $sub_from_us::bigint as sub_from_us,
    $prior_from_us::bigint as prior_from_us
