"""The IPLOS extract sensor: a manifest in ``<landing>/iplos/`` whose data file's content is new
requests a run of that year's partition (``run_key`` = year and checksum: a repeated tick is a no-op)."""


import dagster as dg

from kpr_pipeline.defs.iplos.assets import iplos_extracts, reconciliation_2017
from kpr_pipeline.defs.resources import LandingZoneResource, WarehouseResource
from kpr_pipeline.domain.iplos import IPLOS_YEARS
from kpr_pipeline.ingest.iplos import DATASET, ready_manifests, unprocessed, year_of
from kpr_pipeline.ingest.landing_zone import processed_files

iplos_job = dg.define_asset_job("iplos_job", selection=dg.AssetSelection.assets(iplos_extracts),
                                description="Load the IPLOS extracts of the selected years.")
reconciliation_job = dg.define_asset_job("reconciliation_job", selection=dg.AssetSelection.assets(reconciliation_2017),
                                         description="Reconcile KPR 2017 with IPLOS 2017.")
ONLY_NEW = {"ops": {"iplos_extracts": {"config": {"only_new": True}}}}


@dg.sensor(job=iplos_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="New or re-delivered IPLOS extracts (a manifest is the sign an extract is complete).")
def iplos_extract_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource,
                         warehouse: WarehouseResource):
    manifests = [m for m in ready_manifests(landing_zone.landing) if year_of(m) in IPLOS_YEARS]
    new = unprocessed(manifests, processed_files(warehouse.get(), DATASET))
    requests = [dg.RunRequest(run_key=f"{year_of(m)}:{sha}", partition_key=str(year_of(m)), run_config=ONLY_NEW)
                for m, sha in new]
    return requests or dg.SkipReason("no new IPLOS extracts")


iplos_sensors = [iplos_extract_sensor]
iplos_jobs = [iplos_job, reconciliation_job]
