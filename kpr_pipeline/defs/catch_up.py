"""The daily catch-up sweep (spec/interfaces.md): at 06:00 Norwegian time, anything ready in the landing
zone that no sensor took (a sensor that was off, a failed run) is requested, and partitions whose
inputs changed after their last refresh are refreshed.

Dagster runs one job per schedule and a job's assets share one partitioning, so the sweep is one
schedule per job. Each asks the same question the sensors ask (the ``landing_files`` registry, the
warehouse's own timestamps), so a sweep after a working sensor requests nothing. The runs use the
``only_new`` configuration: a file a sensor's run took meanwhile is skipped, never loaded twice.
"""


import dagster as dg

from kpr_pipeline.defs.care.sensors import care_year_job, only_new
from kpr_pipeline.defs.iplos.sensors import ONLY_NEW as IPLOS_ONLY_NEW
from kpr_pipeline.defs.iplos.sensors import iplos_job
from kpr_pipeline.defs.kuhr.partitions import TIMEZONE
from kpr_pipeline.defs.kuhr.sensors import ONLY_NEW as KUHR_ONLY_NEW
from kpr_pipeline.defs.kuhr.sensors import kuhr_delivery_job, kuhr_month_job
from kpr_pipeline.defs.resources import LandingZoneResource, WarehouseResource
from kpr_pipeline.domain.iplos import IPLOS_YEARS
from kpr_pipeline.ingest import care, iplos, kuhr
from kpr_pipeline.ingest.landing_zone import processed_files

DAILY_AT_SIX = "0 6 * * *"


def _tick_key(context: dg.ScheduleEvaluationContext) -> str:
    return context.scheduled_execution_time.date().isoformat() if context.scheduled_execution_time else "now"


def catch_up_schedules(production: bool) -> list[dg.ScheduleDefinition]:
    """On by default in production, off elsewhere (turn them on in the UI)."""
    status = dg.DefaultScheduleStatus.RUNNING if production else dg.DefaultScheduleStatus.STOPPED
    common = {"cron_schedule": DAILY_AT_SIX, "execution_timezone": TIMEZONE, "default_status": status}

    @dg.schedule(job=kuhr_delivery_job, description="Daily catch-up: KUHR deliveries ready but not processed.",
                 **common)
    def kuhr_catch_up_sweep(context: dg.ScheduleEvaluationContext, landing_zone: LandingZoneResource,
                            warehouse: WarehouseResource):
        found = kuhr.unprocessed(kuhr.ready_manifests(landing_zone.landing), processed_files(warehouse.get(),
                                                                                             kuhr.DATASET))
        dates = sorted({kuhr.partition_date(m).isoformat() for m, _ in found})
        return [dg.RunRequest(run_key=f"catch-up:{_tick_key(context)}:{d}", partition_key=d,
                              run_config=KUHR_ONLY_NEW) for d in dates] or dg.SkipReason("nothing left behind")

    @dg.schedule(job=kuhr_month_job, description="Daily catch-up: treatment months changed after their last "
                 "refresh.", **common)
    def kuhr_months_catch_up_sweep(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
        stale = warehouse.get().query("""
            SELECT t.treatment_month FROM (
                SELECT treatment_month, MAX(processed_at) AS touched FROM kuhr_touched_months GROUP BY treatment_month) t
            LEFT JOIN (SELECT treatment_month, MAX(refreshed_at) AS refreshed FROM kuhr_month_summary
                       GROUP BY treatment_month) s ON s.treatment_month = t.treatment_month
            WHERE s.refreshed IS NULL OR s.refreshed < t.touched ORDER BY t.treatment_month""")
        months = [str(m)[:10] for m in stale["treatment_month"]]
        return [dg.RunRequest(run_key=f"catch-up:{_tick_key(context)}:{m}", partition_key=m)
                for m in months] or dg.SkipReason("every month is fresh")

    @dg.schedule(job=care_year_job, description="Daily catch-up: municipal reports ready but not processed, and "
                 "years whose submissions changed after their completeness was evaluated.", **common)
    def care_catch_up_sweep(context: dg.ScheduleEvaluationContext, landing_zone: LandingZoneResource,
                            warehouse: WarehouseResource):
        w = warehouse.get()
        files: dict[str, list[str]] = {}
        for path in care.unprocessed(care.ready_files(landing_zone.landing), processed_files(w, care.DATASET)):
            files.setdefault(care.partition_of(path), []).append(care.registry_path(path))
        stale = w.query("""
            SELECT s.reporting_year FROM (SELECT reporting_year, MAX(processed_at) AS changed FROM care_submissions
                                          GROUP BY reporting_year) s
            LEFT JOIN care_reporting_years y ON y.reporting_year = s.reporting_year
            WHERE y.evaluated_at IS NULL OR y.evaluated_at < s.changed""")
        years = sorted(set(files) | {str(int(y)) for y in stale["reporting_year"]} & set(map(str, care.reporting_years())))
        return [dg.RunRequest(run_key=f"catch-up:{_tick_key(context)}:{y}", partition_key=y,
                              run_config=only_new(sorted(files.get(y, [])) or None)) for y in years] or dg.SkipReason(
            "nothing left behind")

    @dg.schedule(job=iplos_job, description="Daily catch-up: IPLOS extracts ready but not loaded.", **common)
    def iplos_catch_up_sweep(context: dg.ScheduleEvaluationContext, landing_zone: LandingZoneResource,
                             warehouse: WarehouseResource):
        manifests = [m for m in iplos.ready_manifests(landing_zone.landing) if iplos.year_of(m) in IPLOS_YEARS]
        found = iplos.unprocessed(manifests, processed_files(warehouse.get(), iplos.DATASET))
        years = sorted({str(iplos.year_of(m)) for m, _ in found})
        return [dg.RunRequest(run_key=f"catch-up:{_tick_key(context)}:{y}", partition_key=y,
                              run_config=IPLOS_ONLY_NEW) for y in years] or dg.SkipReason("nothing left behind")

    return [kuhr_catch_up_sweep, kuhr_months_catch_up_sweep, care_catch_up_sweep, iplos_catch_up_sweep]
