"""KUHR assets: deliveries by delivery date, and claims summarised by treatment month."""


import datetime as dt

import dagster as dg
import sqlalchemy as sa

from kpr_pipeline.defs.kuhr.partitions import (delivery_backfill_policy, delivery_date_partitions,
                                               treatment_month_partitions)
from kpr_pipeline.defs.resources import LandingZoneResource, WarehouseResource, warehouse_asset
from kpr_pipeline.ingest.kuhr import DATASET, deliveries_on, process_delivery, unprocessed
from kpr_pipeline.ingest.landing_zone import processed_files
from kpr_pipeline.settings import get_settings
from kpr_pipeline.warehouse.engine import bulk_insert

GROUP = "kuhr"


class DeliveryConfig(dg.Config):
    """``only_new``: skip deliveries whose content the registry already has (sensors, ``kpr-pipeline run``).
    Materialising a partition from the UI reprocesses all of its deliveries (an explicit request)."""

    only_new: bool = False


def _dates(context) -> set[dt.date]:
    return {dt.date.fromisoformat(k) for k in context.partition_keys}


@warehouse_asset(
    group_name=GROUP,
    partitions_def=delivery_date_partitions,
    backfill_policy=delivery_backfill_policy,
    kinds={"sql"},
    description="KPR-KUHR deliveries of the partition's dates: verified or quarantined, every row loaded, "
    "rejected with reasons or counted as a resend; one transaction per delivery.",
)
def kuhr_deliveries(context: dg.AssetExecutionContext, config: DeliveryConfig, warehouse: WarehouseResource,
                    landing_zone: LandingZoneResource) -> dg.MaterializeResult:
    settings = get_settings()
    w = warehouse.get()
    manifests = deliveries_on(landing_zone.landing, _dates(context))
    if config.only_new:
        done = processed_files(w, DATASET)
        manifests = [m for m, _ in unprocessed(manifests, done)]
    totals = {"loaded": 0, "quarantined": 0, "rows_loaded": 0, "rows_rejected": 0, "rows_duplicate": 0}
    reasons: dict[str, int] = {}
    quarantined, months = [], set()
    for i, manifest in enumerate(manifests, start=1):
        result = process_delivery(w, landing_zone.landing, manifest, settings.production, settings.pseudonym_key,
                                  context.run.run_id)
        totals[result.status] += 1
        totals["rows_loaded"] += result.rows_loaded
        totals["rows_rejected"] += result.rows_rejected
        totals["rows_duplicate"] += result.rows_duplicate
        for code, count in result.reasons.items():
            reasons[code] = reasons.get(code, 0) + count
        months |= result.months
        if result.status == "quarantined":
            quarantined.append(f"{result.delivery_id}: {result.reason}")
            context.log.warning(f"quarantined {result.delivery_id}: {result.reason}")
        if i % 50 == 0:
            context.log.info(f"{i}/{len(manifests)} deliveries processed")
    return dg.MaterializeResult(metadata={
        "deliveries": len(manifests), **totals,
        "rejected_by_reason": dg.MetadataValue.json(dict(sorted(reasons.items()))),
        "quarantined_files": dg.MetadataValue.json(quarantined),
        "treatment_months_touched": dg.MetadataValue.json(sorted(m.isoformat() for m in months)),
    })


@warehouse_asset(
    group_name=GROUP,
    partitions_def=treatment_month_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[dg.AssetDep(kuhr_deliveries, partition_mapping=dg.AllPartitionMapping())],
    kinds={"sql"},
    description="Claims by treatment month: counted regninger (credited ones and credit notes never count), "
    "contacts, late claims and suspected doubles; refreshed whenever a delivery touches the month.",
)
def kuhr_treatment_months(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    w = warehouse.get()
    months = sorted(dt.date.fromisoformat(k[:10]) for k in context.partition_keys)
    with w.begin() as conn:
        conn.execute(sa.text("DELETE FROM kuhr_month_summary WHERE treatment_month BETWEEN :a AND :b"),
                     {"a": months[0], "b": months[-1]})
        summary = w.query_in(conn, MONTH_SUMMARY_SQL, a=months[0], b=months[-1])
        summary["refreshed_at"] = dt.datetime.now(dt.timezone.utc)
        bulk_insert(conn, "kuhr_month_summary", summary)
    total = summary[["regninger", "contacts", "credited", "late", "suspected_double"]].sum()
    return dg.MaterializeResult(metadata={
        "months": len(months), "months_with_claims": len(summary),
        **{k: int(v) for k, v in total.items()},
    })


MONTH_SUMMARY_SQL = """
SELECT behandlingsmaaned AS treatment_month,
       SUM(CASE WHEN NOT kreditering AND NOT credited THEN 1 ELSE 0 END) AS regninger,
       SUM(CASE WHEN NOT kreditering AND NOT credited AND is_contact THEN 1 ELSE 0 END) AS contacts,
       COUNT(DISTINCT CASE WHEN NOT kreditering AND NOT credited AND is_contact THEN pid END) AS patients,
       SUM(CASE WHEN credited THEN 1 ELSE 0 END) AS credited,
       SUM(CASE WHEN kreditering THEN 1 ELSE 0 END) AS credit_notes,
       SUM(CASE WHEN NOT kreditering AND NOT credited AND late THEN 1 ELSE 0 END) AS late,
       SUM(CASE WHEN suspected_double THEN 1 ELSE 0 END) AS suspected_double,
       SUM(CASE WHEN NOT kreditering AND NOT credited THEN egenandel ELSE 0 END) AS egenandel_sum,
       SUM(CASE WHEN NOT kreditering AND NOT credited THEN refusjon ELSE 0 END) AS refusjon_sum
FROM kuhr_claims
WHERE behandlingsmaaned BETWEEN :a AND :b
GROUP BY behandlingsmaaned
"""
