import dagster as dg

from kpr_pipeline.defs.reference.assets import reference_assets
from kpr_pipeline.defs.reference.checks import reference_checks

reference_job = dg.define_asset_job("reference_job", selection=dg.AssetSelection.groups("reference"),
                                    description="Load the reference data into the warehouse and check it.")

defs = dg.Definitions(assets=reference_assets, asset_checks=reference_checks, jobs=[reference_job])
