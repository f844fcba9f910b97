"""KUHR through Dagster: sensors on a real instance, partitioned runs, checks, month refresh."""

import datetime as dt
import os

import dagster as dg
import pandas as pd

from kpr_pipeline.definitions import build_definitions
from kpr_pipeline.defs.kuhr.sensors import ONLY_NEW
from kpr_pipeline.settings import Settings
from kpr_pipeline_tests.kuhr_helpers import write_delivery


def _defs(warehouse_url, landing):
    return build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url, "KPR_LANDING_DIR": str(landing)}))


def _tick(defs, instance, name, cursor=None):
    sensor = defs.get_sensor_def(name)
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources,
                                 definitions=defs) as context:  # closed, so nothing leaks into later tests
        return sensor.evaluate_tick(context)


def _spans(requests) -> list[tuple[str, str]]:
    """(first, last) partition of each run request: a single partition or a range."""
    return [(r.tags.get("dagster/asset_partition_range_start", r.partition_key),
             r.tags.get("dagster/asset_partition_range_end", r.partition_key)) for r in requests]


def _rows(kuhr_landing, n):
    path = sorted((kuhr_landing / "kuhr").glob("*.csv.gz"))[3]
    rows = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    return rows[(rows.kreditering == "0") & (rows.tjeneste == "FASTLEGE")].head(n).reset_index(drop=True)


def test_delivery_sensor_readiness_no_double_processing_and_redelivery(warehouse_url, kuhr_landing, tmp_path,
                                                                        dagster_instance):
    landing = tmp_path / "zone"
    defs = _defs(warehouse_url, landing)
    rows = _rows(kuhr_landing, 3).assign(mottatt_dato="2017-03-01")
    data = write_delivery(landing, "kuhr_20170301_001", dt.date(2017, 3, 1), rows, manifest=False)

    first = _tick(defs, dagster_instance, "kuhr_delivery_sensor")
    assert not first.run_requests  # a data file without its manifest is still being written

    write_delivery(landing, "kuhr_20170301_001", dt.date(2017, 3, 1), rows)
    second = _tick(defs, dagster_instance, "kuhr_delivery_sensor", first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2017-03-01"]
    request = second.run_requests[0]

    job = defs.resolve_job_def("kuhr_delivery_job")
    result = job.execute_in_process(instance=dagster_instance, partition_key=request.partition_key,
                                    run_config=request.run_config, tags=request.tags)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.severity == dg.AssetCheckSeverity.ERROR)

    again = _tick(defs, dagster_instance, "kuhr_delivery_sensor", second.cursor)
    assert not again.run_requests  # the next tick
    restarted = _tick(defs, dagster_instance, "kuhr_delivery_sensor", None)
    assert not restarted.run_requests  # a restart without cursor: the warehouse registry remembers

    os.utime(data, (data.stat().st_atime + 5, data.stat().st_mtime + 5))
    write_delivery(landing, "kuhr_20170301_001", dt.date(2017, 3, 1), rows.head(2))  # same name, new content
    manifest = landing / "kuhr" / "kuhr_20170301_001.manifest.json"
    os.utime(manifest, (manifest.stat().st_atime + 5, manifest.stat().st_mtime + 5))
    redelivered = _tick(defs, dagster_instance, "kuhr_delivery_sensor", again.cursor)
    assert len(redelivered.run_requests) == 1 and redelivered.run_requests[0].run_key != request.run_key


def test_a_backlog_of_deliveries_is_one_run_per_contiguous_range_of_dates(warehouse_url, kuhr_landing, tmp_path,
                                                                          dagster_instance):
    landing = tmp_path / "zone"
    defs = _defs(warehouse_url, landing)
    rows = _rows(kuhr_landing, 4)
    dates = [dt.date(2017, 3, 1), dt.date(2017, 3, 2), dt.date(2017, 3, 3), dt.date(2017, 3, 10)]
    for i, day in enumerate(dates):
        write_delivery(landing, f"kuhr_{day:%Y%m%d}_001", day, rows.iloc[[i]].assign(mottatt_dato=day.isoformat()))
    write_delivery(landing, "kuhr_20170303_002", dt.date(2017, 3, 3), rows.iloc[[3]].assign(mottatt_dato="2017-03-03"))
    tick = _tick(defs, dagster_instance, "kuhr_delivery_sensor")
    assert _spans(tick.run_requests) == [("2017-03-01", "2017-03-03"), ("2017-03-10", "2017-03-10")]
    job = defs.resolve_job_def("kuhr_delivery_job")
    for request in tick.run_requests:
        assert job.execute_in_process(instance=dagster_instance, partition_key=request.partition_key,
                                      run_config=request.run_config, tags=request.tags).success
    warehouse = defs.resources["warehouse"].get()
    assert warehouse.scalar("SELECT COUNT(*) FROM kuhr_deliveries WHERE status = 'loaded'") == 5
    assert not _tick(defs, dagster_instance, "kuhr_delivery_sensor", tick.cursor).run_requests


def test_an_interrupted_tick_neither_skips_nor_double_processes(warehouse_url, kuhr_landing, tmp_path,
                                                               dagster_instance):
    """A tick whose cursor was never stored (the daemon died after requesting runs) is evaluated again from
    the old cursor: it asks for the same runs under the same run keys, which Dagster launches once; after
    they ran, the old cursor finds nothing (the registry answers), and a later delivery is still found."""
    landing = tmp_path / "zone"
    defs = _defs(warehouse_url, landing)
    rows = _rows(kuhr_landing, 2)
    write_delivery(landing, "kuhr_20170301_001", dt.date(2017, 3, 1), rows.iloc[[0]].assign(mottatt_dato="2017-03-01"))
    first = _tick(defs, dagster_instance, "kuhr_delivery_sensor")
    again = _tick(defs, dagster_instance, "kuhr_delivery_sensor")  # the cursor of `first` was lost
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests] != []
    job = defs.resolve_job_def("kuhr_delivery_job")
    for request in first.run_requests:
        assert job.execute_in_process(instance=dagster_instance, partition_key=request.partition_key,
                                      run_config=request.run_config, tags=request.tags).success
    assert not _tick(defs, dagster_instance, "kuhr_delivery_sensor").run_requests
    write_delivery(landing, "kuhr_20170302_001", dt.date(2017, 3, 2), rows.iloc[[1]].assign(mottatt_dato="2017-03-02"))
    later = _tick(defs, dagster_instance, "kuhr_delivery_sensor", first.cursor)
    assert _spans(later.run_requests) == [("2017-03-02", "2017-03-02")]
    warehouse = defs.resources["warehouse"].get()
    assert warehouse.scalar("SELECT COUNT(*) FROM kuhr_deliveries") == 1  # processed once


def test_contiguous_ranges_are_capped_and_name_unknown_keys():
    from kpr_pipeline.defs.kuhr.partitions import treatment_month_partitions
    from kpr_pipeline.defs.run_partitions import contiguous_ranges

    months = [f"{y}-{m:02d}-01" for y in (2018, 2019) for m in range(1, 13)] + ["2021-05-01", "2015-01-01"]
    ranges, unknown = contiguous_ranges(months, treatment_month_partitions, 12)
    assert ranges == [("2018-01-01", "2018-12-01"), ("2019-01-01", "2019-12-01"), ("2021-05-01", "2021-05-01")]
    assert unknown == ["2015-01-01"]


def test_credit_in_a_late_delivery_refreshes_the_old_month(warehouse_url, kuhr_landing, tmp_path, dagster_instance):
    landing = tmp_path / "zone"
    defs = _defs(warehouse_url, landing)
    rows = _rows(kuhr_landing, 2).assign(mottatt_dato="2017-03-01")
    month = rows.loc[0, "tidspunkt"][:7] + "-01"
    write_delivery(landing, "kuhr_20170301_001", dt.date(2017, 3, 1), rows)
    deliveries = defs.resolve_job_def("kuhr_delivery_job")
    months = defs.resolve_job_def("kuhr_month_job")
    assert deliveries.execute_in_process(instance=dagster_instance, partition_key="2017-03-01",
                                         run_config=ONLY_NEW).success
    tick = _tick(defs, dagster_instance, "kuhr_month_sensor")
    assert any(first <= month <= last for first, last in _spans(tick.run_requests))
    assert months.execute_in_process(instance=dagster_instance, partition_key=month).success
    warehouse = defs.resources["warehouse"].get()
    summary = warehouse.query("SELECT * FROM kuhr_month_summary WHERE treatment_month = :m", m=month)
    before = int(summary.regninger.iloc[0])

    note = rows.iloc[[0]].assign(regning_id="credit-x", kreditering="1", kreditert_regning_id=rows.loc[0, "regning_id"],
                                 mottatt_dato="2021-06-01")
    note["egenandel"] = "-" + note["egenandel"]
    note["refusjon"] = "-" + note["refusjon"]
    write_delivery(landing, "kuhr_20210601_001", dt.date(2021, 6, 1), note)
    assert deliveries.execute_in_process(instance=dagster_instance, partition_key="2021-06-01",
                                         run_config=ONLY_NEW).success
    later = _tick(defs, dagster_instance, "kuhr_month_sensor", tick.cursor)
    assert [r.partition_key for r in later.run_requests] == [month]  # only the month the credit changed
    assert months.execute_in_process(instance=dagster_instance, partition_key=month).success
    summary = warehouse.query("SELECT * FROM kuhr_month_summary WHERE treatment_month = :m", m=month)
    assert int(summary.regninger.iloc[0]) == before - 1 and int(summary.credited.iloc[0]) == 1
