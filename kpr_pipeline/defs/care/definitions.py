import dagster as dg

from kpr_pipeline.defs.care.assets import care_completeness, care_reports
from kpr_pipeline.defs.care.checks import care_checks
from kpr_pipeline.defs.care.sensors import care_jobs, care_sensors

defs = dg.Definitions(assets=[care_reports, care_completeness], asset_checks=care_checks, jobs=care_jobs,
                      sensors=care_sensors)
