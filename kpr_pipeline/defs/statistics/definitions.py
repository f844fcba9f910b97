import dagster as dg

from kpr_pipeline.defs.statistics.assets import statistics_assets
from kpr_pipeline.defs.statistics.checks import statistics_checks
from kpr_pipeline.defs.statistics.schedules import statistics_jobs

defs = dg.Definitions(assets=statistics_assets, asset_checks=statistics_checks, jobs=statistics_jobs)
