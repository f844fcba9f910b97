"""The daily catch-up sweep: what no sensor took is requested, nothing twice, stale partitions refreshed."""

import datetime as dt
import shutil

import dagster as dg

from kpr_pipeline.definitions import build_definitions
from kpr_pipeline.settings import Settings
from kpr_pipeline_tests.care_helpers import Person, Report, Service, make_identity, when

SIX = dt.datetime(2024, 3, 2, 5, tzinfo=dt.timezone.utc)


def _sweep(defs, instance, name):
    # As a context manager: a schedule context with resources sets the instance's state storage for its
    # duration, and leaving it unclosed would leak that into later tests.
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=SIX, resources=defs.resources,
                                   repository_def=defs.get_repository_def()) as context:
        return defs.get_schedule_def(name).evaluate_tick(context).run_requests or []


def test_the_sweep_takes_what_no_sensor_took_and_then_nothing(warehouse_url, kuhr_landing, small_landing, tmp_path,
                                                              dagster_instance):
    landing = tmp_path / "zone"
    (landing / "kuhr").mkdir(parents=True)
    for f in sorted((kuhr_landing / "kuhr").iterdir())[:4]:  # two deliveries: data file and manifest each
        shutil.copy(f, landing / "kuhr" / f.name)
    shutil.copytree(small_landing / "iplos", landing / "iplos")
    Report(2023, "0301", when(2024, 1, 8), [Person(make_identity(1), [Service(4, "2023-01-01")])]).write(landing)
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url, "KPR_LANDING_DIR": str(landing)}))

    requests = {name: _sweep(defs, dagster_instance, name) for name in
                ("kuhr_catch_up_sweep", "care_catch_up_sweep", "iplos_catch_up_sweep", "kuhr_months_catch_up_sweep")}
    assert requests["kuhr_catch_up_sweep"] and requests["care_catch_up_sweep"][0].partition_key == "2023"
    assert sorted(r.partition_key for r in requests["iplos_catch_up_sweep"]) == [str(y) for y in range(2007, 2018)]
    assert not requests["kuhr_months_catch_up_sweep"]  # nothing loaded yet, nothing stale

    jobs = {"kuhr_catch_up_sweep": "kuhr_delivery_job", "care_catch_up_sweep": "care_year_job",
            "iplos_catch_up_sweep": "iplos_job"}
    for name, job in jobs.items():
        for request in requests[name]:
            result = defs.resolve_job_def(job).execute_in_process(
                instance=dagster_instance, partition_key=request.partition_key, run_config=request.run_config)
            assert result.success
    for name in jobs:
        assert not _sweep(defs, dagster_instance, name), name  # everything taken: the next sweep requests nothing

    stale = _sweep(defs, dagster_instance, "kuhr_months_catch_up_sweep")  # the deliveries touched months
    assert stale
    for request in stale:
        assert defs.resolve_job_def("kuhr_month_job").execute_in_process(
            instance=dagster_instance, partition_key=request.partition_key).success
    assert not _sweep(defs, dagster_instance, "kuhr_months_catch_up_sweep")
