import dagster as dg

from kpr_pipeline.defs.kuhr.assets import kuhr_deliveries, kuhr_treatment_months
from kpr_pipeline.defs.kuhr.checks import kuhr_checks, kuhr_freshness_job
from kpr_pipeline.defs.kuhr.sensors import kuhr_jobs, kuhr_sensors

defs = dg.Definitions(assets=[kuhr_deliveries, kuhr_treatment_months], asset_checks=kuhr_checks, jobs=[*kuhr_jobs, kuhr_freshness_job],
                      sensors=kuhr_sensors)
