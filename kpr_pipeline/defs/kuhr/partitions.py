"""KUHR partitions.

Deliveries are partitioned by delivery date (daily from 2016-07-01: about 3,800 keys by 2027, well
under Dagster's guideline), not by file: one dynamic partition per file would grow without bound
and slow the UI and daemon. Several deliveries of a day are processed in the day's partition; the
``landing_files`` registry in the warehouse is the source of truth for what was processed.
Claims are summarised by treatment month (monthly from 2016-07).
"""

import dagster as dg

TIMEZONE = "Europe/Oslo"
delivery_date_partitions = dg.DailyPartitionsDefinition(start_date="2016-07-01", timezone=TIMEZONE, end_offset=1)
treatment_month_partitions = dg.MonthlyPartitionsDefinition(start_date="2016-07-01", timezone=TIMEZONE, end_offset=1)
