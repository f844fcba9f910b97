"""Statistics partitions beyond those of their inputs: KUHR years (2016 on, the running year included,
published as preliminary) for the annual KUHR table."""

import dagster as dg

from kpr_pipeline.defs.kuhr.partitions import TIMEZONE

treatment_year_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *", start="2016", timezone=TIMEZONE, fmt="%Y", end_offset=1)

#: Years of KUHR months before 2016-07 do not exist: a year maps to the months of it that do.
MONTHS_OF_YEAR = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)
