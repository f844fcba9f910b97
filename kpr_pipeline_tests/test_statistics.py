"""Statistics computed in the warehouse, through the real jobs, on DuckDB and PostgreSQL."""

import pandas as pd

from kpr_pipeline.definitions import build_definitions
from kpr_pipeline.defs.kuhr.sensors import ONLY_NEW
from kpr_pipeline.settings import Settings

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_delivery_completeness_is_the_reporting_delay_triangle(warehouse_url, kuhr_landing, dagster_instance):
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url,
                                                "KPR_LANDING_DIR": str(kuhr_landing)}))
    deliveries = defs.resolve_job_def("kuhr_delivery_job").execute_in_process(
        instance=dagster_instance, run_config=ONLY_NEW, tags=dict(zip(RANGE, ("2017-01-01", "2017-03-31"))))
    assert deliveries.success
    months = defs.resolve_job_def("kuhr_month_job").execute_in_process(
        instance=dagster_instance, tags=dict(zip(RANGE, ("2016-07-01", "2017-03-01"))))
    assert months.success
    checks = {e.check_name: e for e in months.get_asset_check_evaluations()}
    assert checks["delivery_completeness_adds_up"].passed

    w = defs.resources["warehouse"].get()
    table = w.query("SELECT * FROM kuhr_delivery_completeness ORDER BY treatment_month, delay_months")
    assert len(table) == 9 * 7  # every month of the run, every delay, zero-filled
    claims = w.query("SELECT behandlingsmaaned, mottatt_dato FROM kuhr_claims WHERE NOT kreditering AND NOT credited")
    bm, mottatt = pd.to_datetime(claims["behandlingsmaaned"]), pd.to_datetime(claims["mottatt_dato"])
    delay = ((mottatt.dt.year * 12 + mottatt.dt.month) - (bm.dt.year * 12 + bm.dt.month)).clip(upper=6)
    expected = pd.DataFrame({"m": bm.dt.date, "d": delay}).value_counts().to_dict()
    got = {(pd.Timestamp(r.treatment_month).date(), int(r.delay_months)): int(r.regninger)
           for r in table.itertuples() if r.regninger}
    assert got == expected
    for _, month in table.groupby("treatment_month"):
        shares = month["share_of_total"]
        if month["regninger"].sum():
            assert shares.is_monotonic_increasing and abs(shares.iloc[-1] - 1.0) < 1e-9
        else:
            assert shares.isna().all()  # an empty month's share is empty, not 0
    assert table["regninger"].sum() == len(claims)
