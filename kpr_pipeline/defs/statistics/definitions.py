import dagster as dg

from kpr_pipeline.defs.statistics.assets import kuhr_delivery_completeness
from kpr_pipeline.defs.statistics.checks import statistics_checks

defs = dg.Definitions(assets=[kuhr_delivery_completeness], asset_checks=statistics_checks)
