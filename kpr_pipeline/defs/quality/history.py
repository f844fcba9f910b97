"""What Dagster knows about checks and runs, as the plain rows that the report and the alerts use."""

import datetime as dt

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from kpr_pipeline.defs.run_partitions import PARTITION, RANGE_END, RANGE_START
from kpr_pipeline.quality.alerts import Alert
from kpr_pipeline.quality.report import CheckResult

#: results read per check (the latest per partition and the trend come from these)
HISTORY_PER_CHECK = 1000


def _run_partition(run: dg.DagsterRun | None) -> str | None:
    if run is None:
        return None
    if PARTITION in run.tags:
        return run.tags[PARTITION]
    if RANGE_START in run.tags:
        return f"{run.tags[RANGE_START]}..{run.tags[RANGE_END]}"
    return None


def _status(evaluation) -> str:
    if evaluation.passed:
        return "pass"
    return "warn" if evaluation.severity == dg.AssetCheckSeverity.WARN else "fail"


def check_history(instance: dg.DagsterInstance, check_keys) -> list[CheckResult]:
    """Every recorded evaluation of the checks (newest ``HISTORY_PER_CHECK`` each); a check whose run failed
    before it could report is ``error``."""
    runs: dict[str, dg.DagsterRun | None] = {}

    def run_of(run_id: str):
        if run_id not in runs:
            runs[run_id] = instance.get_run_by_id(run_id)
        return runs[run_id]

    results = []
    for key in check_keys:
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=HISTORY_PER_CHECK):
            at = dt.datetime.fromtimestamp(record.create_timestamp, dt.timezone.utc)
            if record.status == AssetCheckExecutionRecordStatus.PLANNED:
                run = run_of(record.run_id)
                if run is None or run.status != dg.DagsterRunStatus.FAILURE:
                    continue  # still running, or skipped: nothing to report
                results.append(CheckResult(key.asset_key.to_user_string(), key.name,
                                           record.partition or _run_partition(run), "error", at,
                                           "the run failed before the check reported"))
                continue
            evaluation = record.event.dagster_event.event_specific_data
            partition = record.partition or getattr(evaluation, "partition", None) or _run_partition(
                run_of(record.run_id))
            results.append(CheckResult(key.asset_key.to_user_string(), key.name, partition, _status(evaluation), at,
                                       evaluation.description))
    return results


FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def check_alerts(instance: dg.DagsterInstance, updated_after: dt.datetime) -> tuple[list[Alert], dt.datetime]:
    """Alerts for the failed check evaluations of the runs that finished after ``updated_after``, and the
    newest update time seen. Read run by run, so it works on every event log storage (the embedded SQLite
    one is sharded by run and has no cursor across runs)."""
    alerts, newest = [], updated_after
    for record in instance.get_run_records(dg.RunsFilter(statuses=FINISHED, updated_after=updated_after),
                                           order_by="update_timestamp", ascending=True):
        newest = max(newest, record.update_timestamp)
        run = record.dagster_run
        events = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                                              limit=100_000).records
        for event in events:
            evaluation = event.event_log_entry.dagster_event.event_specific_data
            if evaluation.passed:
                continue
            error = evaluation.severity == dg.AssetCheckSeverity.ERROR
            alerts.append(Alert(
                source_key=f"check:{run.run_id}:{event.storage_id}", kind="check_failure" if error else "check_warning",
                severity="ERROR" if error else "WARN",
                subject=f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}",
                partition=getattr(evaluation, "partition", None) or _run_partition(run), run_id=run.run_id,
                message=evaluation.description or f"check {evaluation.check_name} did not pass",
                raised_at=dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc)))
    return alerts, newest


def run_failure_alert(run: dg.DagsterRun, message: str | None) -> Alert:
    return Alert(source_key=f"run:{run.run_id}", kind="run_failure", severity="ERROR", subject=run.job_name,
                 partition=_run_partition(run), run_id=run.run_id,
                 message=message or f"run of {run.job_name} failed")
