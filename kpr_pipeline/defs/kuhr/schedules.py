"""The KUHR feed's freshness, checked every morning even when no delivery came (then above all)."""


import dagster as dg

from kpr_pipeline.defs.kuhr.checks import kuhr_freshness_job
from kpr_pipeline.defs.kuhr.partitions import TIMEZONE


def kuhr_schedules(production: bool) -> list[dg.ScheduleDefinition]:
    """Schedules are on by default in production, off elsewhere (turn them on in the UI)."""
    status = dg.DefaultScheduleStatus.RUNNING if production else dg.DefaultScheduleStatus.STOPPED
    return [dg.ScheduleDefinition(name="kuhr_freshness_schedule", job=kuhr_freshness_job, cron_schedule="0 7 * * *",
                                  execution_timezone=TIMEZONE, default_status=status,
                                  description="Every morning at 07:00: is the KUHR feed stale (kuhr_feed_fresh)?")]
