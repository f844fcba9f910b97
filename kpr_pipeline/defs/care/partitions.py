"""KPR-helse og omsorg partitions: one per reporting year from 2017 (the year's reports arrive in January
of the next year, so the partition of a year exists once the year has ended)."""

import dagster as dg

from kpr_pipeline.defs.kuhr.partitions import TIMEZONE
from kpr_pipeline.ingest.care import FIRST_REPORTING_YEAR

reporting_year_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *", start=str(FIRST_REPORTING_YEAR), timezone=TIMEZONE, fmt="%Y", end_offset=0)
