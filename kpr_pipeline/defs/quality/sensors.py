"""Alerts and the report's refresh: a run-failure sensor, a check-failure sensor (event log, cursor on the
storage id), and a sensor that rebuilds the quality report after every run that changed data."""

import datetime as dt

import dagster as dg

from kpr_pipeline.defs.quality.assets import quality_report_job
from kpr_pipeline.defs.quality.history import check_alerts, run_failure_alert
from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.quality import alerts
from kpr_pipeline.settings import get_settings

UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


@dg.run_failure_sensor(name="run_failure_alerts", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="A failed run becomes an alert: a row in the warehouse table alerts, a log line, "
                       "and a JSON post to KPR_ALERT_WEBHOOK_URL when it is set.")
def run_failure_alerts(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    message = context.failure_event.message if context.failure_event else None
    alerts.record(warehouse.get(), run_failure_alert(context.dagster_run, message), get_settings().alert_webhook_url,
                  context.log.warning)


@dg.sensor(name="check_failure_alerts", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every failed check (ERROR or WARN) becomes an alert, as run_failure_alerts does.")
def check_failure_alerts(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    # the cursor is the update time of the newest finished run seen; a second of overlap, because alerts
    # are recorded once whatever is read twice
    after = (dt.datetime.fromisoformat(context.cursor) - dt.timedelta(seconds=1) if context.cursor
             else dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc))
    found, newest = check_alerts(context.instance, after)
    recorded = sum(alerts.record(warehouse.get(), a, get_settings().alert_webhook_url, context.log.warning)
                   for a in found)
    context.update_cursor(newest.isoformat())  # after recording: an interrupted tick is repeated, not skipped
    return dg.SkipReason(f"{recorded} alerts recorded" if recorded else "no failed check")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, request_job=quality_report_job,
                      name="quality_report_after_runs", default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Rebuild the quality report after a run that materialised something.")
def quality_report_after_runs(context: dg.RunStatusSensorContext):
    run = context.dagster_run
    if run.job_name == quality_report_job.name:
        return dg.SkipReason("the report's own run")
    changed = context.instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                                                    limit=1).records
    if not changed:
        return dg.SkipReason(f"run {run.run_id} changed no data")
    waiting = context.instance.get_run_ids(dg.RunsFilter(job_name=quality_report_job.name, statuses=UNFINISHED),
                                           limit=1)
    if waiting:
        return dg.SkipReason("a report run is already waiting to start: it will include this run")
    return dg.RunRequest(run_key=f"after-{run.run_id}")


quality_sensors = [run_failure_alerts, check_failure_alerts, quality_report_after_runs]
