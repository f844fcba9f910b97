"""KUHR sensors: new deliveries in the landing zone, and treatment months that deliveries changed.

The delivery sensor lists only manifests newer than its watermark (modification time) and asks the
warehouse's ``landing_files`` registry whether a file with that content was already processed, so a
restart, a repeated tick or a re-listed directory never processes a file twice, while a file
re-delivered with new content is processed again. ``run_key`` makes a repeated request a no-op.
Both sensors request one run per contiguous range of partitions (at most a month of delivery dates,
a year of treatment months), so a backlog does not become one run per partition.
"""


import hashlib
import json
from pathlib import Path

import dagster as dg

from kpr_pipeline.defs.kuhr.assets import kuhr_deliveries, kuhr_treatment_months
from kpr_pipeline.defs.kuhr.partitions import (DATES_PER_RUN, MONTHS_PER_RUN, delivery_date_partitions,
                                               treatment_month_partitions)
from kpr_pipeline.defs.resources import LandingZoneResource, WarehouseResource
from kpr_pipeline.defs.run_partitions import contiguous_ranges, partition_range_request
from kpr_pipeline.ingest.kuhr import DATASET, delivery_id_of, partition_date, ready_manifests, unprocessed
from kpr_pipeline.ingest.landing_zone import processed_files

kuhr_delivery_job = dg.define_asset_job(
    "kuhr_delivery_job", selection=dg.AssetSelection.assets(kuhr_deliveries),
    description="Process the KUHR deliveries of the selected delivery dates, with their checks.")
ONLY_NEW = {"ops": {"kuhr_deliveries": {"config": {"only_new": True}}}}
kuhr_month_job = dg.define_asset_job(
    "kuhr_month_job", selection=dg.AssetSelection.assets(kuhr_treatment_months, "kuhr_delivery_completeness"),
    description="Refresh the selected treatment months and their monthly statistics.")


def new_deliveries(landing: Path, watermark: float, registry: dict[str, str]) -> tuple[list[tuple[Path, str]], float]:
    """Manifests modified after ``watermark`` whose data file's content is not yet in the registry."""
    manifests = [(m, m.stat().st_mtime) for m in ready_manifests(landing)]
    newest = max([watermark, *(t for _, t in manifests)])
    return unprocessed([m for m, t in manifests if t > watermark], registry), newest


@dg.sensor(job=kuhr_delivery_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="New KUHR deliveries (a manifest is the sign a delivery is complete).")
def kuhr_delivery_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource,
                         warehouse: WarehouseResource):
    cursor = json.loads(context.cursor) if context.cursor else {"watermark": 0.0}
    registry = processed_files(warehouse.get(), DATASET)
    found, newest = new_deliveries(landing_zone.landing, cursor["watermark"], registry)
    by_date: dict[str, list[str]] = {}
    for manifest, sha in found:
        by_date.setdefault(partition_date(manifest).isoformat(), []).append(f"{delivery_id_of(manifest)}:{sha}")
    ranges, unknown = contiguous_ranges(by_date, delivery_date_partitions, DATES_PER_RUN)
    if unknown:  # a delivery dated after tomorrow: the daily catch-up sweep takes it once its date exists
        context.log.warning(f"deliveries dated outside the partitions, left for the catch-up sweep: {unknown}")
    requests = []
    for first, last in ranges:
        keys = sorted(k for d, ks in by_date.items() if first <= d <= last for k in ks)
        requests.append(partition_range_request(
            first, last, run_key="deliveries:" + hashlib.sha256("|".join(keys).encode()).hexdigest(),
            run_config=ONLY_NEW, tags={"kpr/deliveries": ",".join(k.split(":")[0] for k in keys)[:200]}))
    # Keep the watermark one second back, so a file written within the same second is not missed.
    context.update_cursor(json.dumps({"watermark": max(cursor["watermark"], newest - 1.0)}))
    if not requests:
        return dg.SkipReason("no new deliveries")
    return requests


@dg.sensor(job=kuhr_month_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Treatment months that a processed delivery changed (late claims, credits), however old.")
def kuhr_month_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    since = context.cursor or "1970-01-01T00:00:00+00:00"
    touched = warehouse.get().query(
        "SELECT treatment_month, MAX(processed_at) AS at FROM kuhr_touched_months WHERE processed_at > :since "
        "GROUP BY treatment_month ORDER BY treatment_month", since=since)
    if touched.empty:
        return dg.SkipReason("no treatment month changed")
    newest = max(touched["at"]).isoformat()
    context.update_cursor(newest)
    months = [str(m)[:10] for m in touched["treatment_month"]]
    ranges, unknown = contiguous_ranges(months, treatment_month_partitions, MONTHS_PER_RUN)
    if unknown:
        context.log.warning(f"treatment months outside the partitions (before 2016-07 or in the future): {unknown}")
    return [partition_range_request(first, last, run_key=f"{first}..{last}:{newest}") for first, last in ranges]


kuhr_jobs = [kuhr_delivery_job, kuhr_month_job]
kuhr_sensors = [kuhr_delivery_sensor, kuhr_month_sensor]
