import dagster as dg

from kpr_pipeline.defs.iplos.assets import iplos_extracts, reconciliation_2017
from kpr_pipeline.defs.iplos.checks import iplos_checks
from kpr_pipeline.defs.iplos.sensors import iplos_jobs, iplos_sensors

defs = dg.Definitions(assets=[iplos_extracts, reconciliation_2017], asset_checks=iplos_checks, jobs=iplos_jobs,
                      sensors=iplos_sensors)
