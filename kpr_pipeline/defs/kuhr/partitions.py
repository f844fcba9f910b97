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

#: How many partitions one run takes, in backfills (the assets' backfill policies) and in the sensors'
#: requests alike. A month of delivery dates (~3 million rows at national volume) is a unit an operator can
#: re-run after a failure; the whole history in one run would restart from scratch. The treatment-month
#: summary is one cheap GROUP BY: all months in one run. Monthly statistics go a year per run (bounded
#: memory, parallel on PostgreSQL, one year redone on a retry).
DATES_PER_RUN, MONTHS_PER_RUN = 31, 12
delivery_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=DATES_PER_RUN)
monthly_statistics_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=MONTHS_PER_RUN)
