"""Statistics jobs and the monthly KUHR publication.

The statistics refresh themselves in a deployment (eager automation: a changed input partition
requests exactly the statistics partitions that depend on it); these jobs are what ``kpr-pipeline run``
and operators launch. The monthly publication runs  on the 1st, 07:00 Norwegian time, after the 06:00 catch-up
sweep: the treatment months up to the month that ended 30 days or more before, as Helsedirektoratet
publishes."""


import dagster as dg

from kpr_pipeline.defs.kuhr.partitions import TIMEZONE
from kpr_pipeline.statistics.publication import through_month_for

kuhr_statistics_month_job = dg.define_asset_job(
    "kuhr_statistics_month_job", selection=dg.AssetSelection.assets("kuhr_contacts_monthly"),
    description="Refresh the monthly KUHR contact statistics of the selected treatment months.")
kuhr_year_job = dg.define_asset_job(
    "kuhr_year_job", selection=dg.AssetSelection.assets("kuhr_contacts_annual"),
    description="Refresh the annual KUHR statistics of the selected years.")
care_statistics_job = dg.define_asset_job(
    "care_statistics_job", selection=dg.AssetSelection.assets("care_users_annual", "care_gp_contacts"),
    description="Refresh the care statistics of the selected reporting years (after a KUHR change: GP contacts).")
iplos_statistics_job = dg.define_asset_job(
    "iplos_statistics_job", selection=dg.AssetSelection.assets("care_users_annual_iplos"),
    description="Refresh the IPLOS years of care_users_annual.")
publication_job = dg.define_asset_job(
    "publication_job", selection=dg.AssetSelection.assets("statistics_publication"),
    description="Disclosure control and publication of every statistic (CSV and JSON metadata). Run config "
    "ops.statistics_publication.config.through_month: \"YYYY-MM\" chooses the newest treatment month.")


def publication_config(through: str) -> dict:
    return {"ops": {"statistics_publication": {"config": {"through_month": through}}}}


def statistics_schedules(production: bool) -> list[dg.ScheduleDefinition]:
    """On by default in production, off elsewhere (turn it on in the UI)."""
    status = dg.DefaultScheduleStatus.RUNNING if production else dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(job=publication_job, cron_schedule="0 7 1 * *", execution_timezone=TIMEZONE, default_status=status,
                 description="Monthly KUHR publication: treatment months up to the month that ended 30 days or "
                 "more before, with every other statistic as it stands.")
    def monthly_publication_schedule(context: dg.ScheduleEvaluationContext):
        through = through_month_for(context.scheduled_execution_time.date()).strftime("%Y-%m")
        return dg.RunRequest(run_key=f"publication-{through}", run_config=publication_config(through),
                             tags={"kpr/through_month": through})

    return [monthly_publication_schedule]


statistics_jobs = [kuhr_statistics_month_job, kuhr_year_job, care_statistics_job, iplos_statistics_job, publication_job]
