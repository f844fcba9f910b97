"""KPR-helse og omsorg through Dagster: the settle sensor, a year's run with its checks, one municipality
re-run through run config, the deadline schedule, and warnings turning into errors after the deadline."""

import datetime as dt
import time

import dagster as dg

from kpr_pipeline.definitions import build_definitions
from kpr_pipeline.defs.care.sensors import only_new
from kpr_pipeline.settings import Settings
from kpr_pipeline_tests.care_helpers import Person, Report, Service, make_identity, when


def _defs(warehouse_url, landing, settle="0"):
    return build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url, "KPR_LANDING_DIR": str(landing),
                                                "KPR_REPORT_SETTLE_SECONDS": settle}))


def _tick(defs, instance, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources,
                                 definitions=defs) as context:  # closed, so nothing leaks into later tests
        return defs.get_sensor_def("care_report_sensor").evaluate_tick(context)


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _reports(landing, year=2023):
    persons = [Person(make_identity(i), [Service(15, f"{year}-02-01", timer=3.0), Service(6, f"{year - 1}-01-01")])
               for i in range(1, 30)]
    return [Report(year, "0301", when(year + 1, 1, 8), persons).write(landing),
            Report(year, "4601", when(year + 1, 1, 9), persons[:20]).write(landing)]


def test_sensor_waits_for_a_settled_file_and_never_requests_twice(warehouse_url, tmp_path, dagster_instance):
    landing = tmp_path / "zone"
    defs = _defs(warehouse_url, landing, settle="1")
    _reports(landing)
    first = _tick(defs, dagster_instance)
    assert not first.run_requests  # just seen: not settled yet
    time.sleep(1.1)
    second = _tick(defs, dagster_instance, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2023"]
    request = second.run_requests[0]
    assert sorted(request.run_config["ops"]["care_reports"]["config"]["files"]) == [
        "helse_omsorg/2023/kpr_ho_2023_0301_20240108T093000.xml", "helse_omsorg/2023/kpr_ho_2023_4601_20240109T093000.xml"]
    assert not _tick(defs, dagster_instance, second.cursor).run_requests  # requested once per content

    result = defs.resolve_job_def("care_year_job").execute_in_process(
        instance=dagster_instance, partition_key="2023", run_config=request.run_config)
    assert result.success
    assert not _tick(defs, dagster_instance, None).run_requests  # a restart: the registry remembers

    growing = Report(2023, "5001", when(2024, 1, 10), []).write(landing)
    seen = _tick(defs, dagster_instance, second.cursor)
    assert not seen.run_requests  # first seen
    time.sleep(1.1)
    growing.write_bytes(growing.read_bytes() + b"\n")  # still being written: the settle clock starts again
    grown = _tick(defs, dagster_instance, seen.cursor)
    assert not grown.run_requests
    time.sleep(1.1)
    settled = _tick(defs, dagster_instance, grown.cursor)
    assert [r.run_config["ops"]["care_reports"]["config"]["files"] for r in settled.run_requests] == [
        [f"helse_omsorg/2023/{growing.name}"]]


def test_a_year_runs_with_its_checks_and_one_municipality_can_be_rerun(warehouse_url, tmp_path, dagster_instance):
    landing = tmp_path / "zone"
    defs = _defs(warehouse_url, landing)
    _reports(landing, 2022)
    _reports(landing, 2023)
    job = defs.resolve_job_def("care_year_job")
    result = job.execute_in_process(instance=dagster_instance, run_config=only_new(),
                                    tags={"dagster/asset_partition_range_start": "2022",
                                          "dagster/asset_partition_range_end": "2023"})
    assert result.success
    checks = _checks(result)
    for name in ("contract_care_services", "contract_care_submissions", "care_accounting", "care_no_raw_identifier",
                 "care_users_vs_previous_year", "care_municipality_users_drop"):
        assert checks[name].passed, name
    complete = checks["care_reports_complete"]
    assert not complete.passed and complete.severity == dg.AssetCheckSeverity.ERROR  # the deadlines have passed
    missing = complete.metadata["missing_by_year"].value
    assert "0301" not in missing["2023"] and "1103" in missing["2023"]

    warehouse = defs.resources["warehouse"].get()
    # A steward re-runs Oslo's 2023 submission only: nothing else is touched.
    before = warehouse.query("SELECT data_file, processed_at FROM care_submissions ORDER BY data_file")
    rerun = job.execute_in_process(instance=dagster_instance, partition_key="2023",
                                   run_config={"ops": {"care_reports": {"config": {"kommunenummer": ["0301"]}}}})
    assert rerun.success
    after = warehouse.query("SELECT data_file, processed_at FROM care_submissions ORDER BY data_file")
    changed = set(after.loc[after["processed_at"] != before["processed_at"], "data_file"])
    assert changed == {"kpr_ho_2023_0301_20240108T093000.xml"}
    materialization = rerun.asset_materializations_for_node("care_reports")[0]
    assert materialization.metadata["files"].value == 1

    # Oslo's users drop by half in 2024: a warning for stewards, not a failure of the run.
    Report(2024, "0301", when(2025, 1, 8), [Person(make_identity(i), [Service(15, "2024-02-01", timer=3.0)])
                                            for i in range(1, 12)]).write(landing)
    year_2024 = job.execute_in_process(instance=dagster_instance, partition_key="2024", run_config=only_new())
    assert year_2024.success
    drop = _checks(year_2024)["care_municipality_users_drop"]
    assert not drop.passed and drop.severity == dg.AssetCheckSeverity.WARN
    assert drop.metadata["dropped"].value == ["2024/0301"]


def test_before_the_deadline_missing_municipalities_are_a_warning(warehouse_url, tmp_path, dagster_instance):
    landing = tmp_path / "zone"
    defs = _defs(warehouse_url, landing)
    _reports(landing)
    config = {"ops": {"care_reports": {"config": {"only_new": True}},
                      "care_completeness": {"config": {"as_of": "2024-01-10T12:00:00+01:00"}}}}
    result = defs.resolve_job_def("care_year_job").execute_in_process(instance=dagster_instance, partition_key="2023",
                                                                      run_config=config)
    complete = _checks(result)["care_reports_complete"]
    assert not complete.passed and complete.severity == dg.AssetCheckSeverity.WARN


def test_files_no_year_takes_are_quarantined_not_left_waiting(warehouse_url, tmp_path, dagster_instance):
    landing = tmp_path / "zone"
    defs = _defs(warehouse_url, landing)
    early = Report(2016, "0301", when(2017, 1, 8), []).write(landing)  # before KPR
    odd = landing / "helse_omsorg" / "incoming" / "kpr_ho_2023_0301_20240108T093000.xml"
    odd.parent.mkdir(parents=True)
    odd.write_text("<x/>", encoding="utf-8")
    tick = _tick(defs, dagster_instance)
    assert [r.partition_key for r in tick.run_requests] == [str(dt.date.today().year - 1)]
    result = defs.resolve_job_def("care_year_job").execute_in_process(
        instance=dagster_instance, partition_key=tick.run_requests[0].partition_key,
        run_config=tick.run_requests[0].run_config)
    assert result.success
    events = defs.resources["warehouse"].get().query("SELECT path, reason FROM quarantine_events ORDER BY path")
    assert events["reason"].tolist() == ["reporting_year_out_of_range"] * 2
    assert not early.exists() and not odd.exists()
    assert not _tick(defs, dagster_instance, tick.cursor).run_requests


def test_deadline_schedule_evaluates_the_previous_year(warehouse_url, tmp_path, dagster_instance):
    defs = _defs(warehouse_url, tmp_path / "zone")
    schedule = defs.get_schedule_def("care_deadline_schedule")
    assert schedule.cron_schedule == "0 6 16 1 *" and schedule.execution_timezone == "Europe/Oslo"
    with dg.build_schedule_context(instance=dagster_instance, repository_def=defs.get_repository_def(),
                                   scheduled_execution_time=dt.datetime(2024, 1, 16, 6, tzinfo=dt.timezone.utc)) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2023" and request.run_config == only_new()
