"""The annual-report deadline: on 16 January at 06:00 Norwegian time, the previous reporting year's
reports are taken in (anything not yet processed) and its completeness evaluated against the
municipalities valid that year; the completeness check turns from a warning into an error."""


import dagster as dg

from kpr_pipeline.defs.care.sensors import care_year_job, only_new
from kpr_pipeline.defs.kuhr.partitions import TIMEZONE


def care_schedules(production: bool) -> list[dg.ScheduleDefinition]:
    """Schedules are on by default in production, off elsewhere (turn them on in the UI)."""
    status = dg.DefaultScheduleStatus.RUNNING if production else dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(job=care_year_job, cron_schedule="0 6 16 1 *", execution_timezone=TIMEZONE, default_status=status,
                 description="After the 15 January deadline: the previous reporting year's completeness.")
    def care_deadline_schedule(context: dg.ScheduleEvaluationContext):
        year = str(context.scheduled_execution_time.year - 1)
        return dg.RunRequest(run_key=f"deadline-{year}", partition_key=year, run_config=only_new())

    return [care_deadline_schedule]
