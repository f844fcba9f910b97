import dagster as dg

from kpr_pipeline.defs.quality.assets import quality_report, quality_report_job
from kpr_pipeline.defs.quality.sensors import quality_sensors

defs = dg.Definitions(assets=[quality_report], jobs=[quality_report_job], sensors=quality_sensors)
