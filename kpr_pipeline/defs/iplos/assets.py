"""IPLOS assets: the historical extracts by year, and the 2017 reconciliation with KPR."""


import dagster as dg

from kpr_pipeline.defs.resources import LandingZoneResource, WarehouseResource, warehouse_asset
from kpr_pipeline.domain.iplos import IPLOS_YEARS
from kpr_pipeline.ingest.iplos import DATASET, process_extract, ready_manifests, unprocessed, year_of
from kpr_pipeline.ingest.landing_zone import processed_files
from kpr_pipeline.quality import reconciliation
from kpr_pipeline.settings import get_settings

GROUP = "iplos"
#: One partition per historical year: IPLOS is closed, so a static list is exact.
iplos_year_partitions = dg.StaticPartitionsDefinition([str(y) for y in IPLOS_YEARS])
NO_KEY = ("IPLOS_PSEUDONYM_KEY is not set: the 2017 reconciliation is skipped. Set it (the linkage key from the "
          "IPLOS pseudonymisation) before loading the 2017 municipal reports, then run reconciliation_2017.")


class ExtractConfig(dg.Config):
    """``only_new``: skip extracts whose content the registry already has (the sensor, ``kpr-pipeline run``)."""

    only_new: bool = False


@warehouse_asset(
    group_name=GROUP,
    partitions_def=iplos_year_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"sql"},
    description="IPLOS extracts 2007-2017 (pseudonymous): verified or quarantined, record rules with reasons; "
    "an extract replaces its whole year in one transaction.",
)
def iplos_extracts(context: dg.AssetExecutionContext, config: ExtractConfig, warehouse: WarehouseResource,
                   landing_zone: LandingZoneResource) -> dg.MaterializeResult:
    w = warehouse.get()
    years = {int(k) for k in context.partition_keys}
    manifests = [m for m in ready_manifests(landing_zone.landing) if year_of(m) in years]
    if config.only_new:
        manifests = [m for m, _ in unprocessed(manifests, processed_files(w, DATASET))]
    totals = {"loaded": 0, "quarantined": 0, "rows_loaded": 0, "rows_rejected": 0}
    reasons: dict[str, int] = {}
    quarantined = []
    for manifest in manifests:
        result = process_extract(w, landing_zone.landing, manifest, context.run.run_id)
        totals[result.status] += 1
        totals["rows_loaded"] += result.rows_loaded
        totals["rows_rejected"] += result.rows_rejected
        for code, n in result.reasons.items():
            reasons[code] = reasons.get(code, 0) + n
        if result.status == "quarantined":
            quarantined.append(f"{manifest.name}: {result.reason}")
            context.log.warning(f"quarantined {manifest.name}: {result.reason}")
    return dg.MaterializeResult(metadata={
        "extracts": len(manifests), **totals,
        "rejected_by_reason": dg.MetadataValue.json(dict(sorted(reasons.items()))),
        "quarantined_files": dg.MetadataValue.json(quarantined),
    })


@warehouse_asset(
    group_name=GROUP,
    deps=[iplos_extracts, "care_reports"],
    kinds={"sql"},
    output_required=False,
    automation_condition=dg.AutomationCondition.eager(),
    description="KPR 2017 against IPLOS 2017 per municipality and service code (and nationally): persons in "
    "both or only one, matched decisions and their differences. Counts only. Skipped without "
    "IPLOS_PSEUDONYM_KEY.",
)
def reconciliation_2017(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    settings = get_settings()
    if not settings.iplos_pseudonym_key:
        context.log.warning(NO_KEY)
        reconciliation.clear(warehouse.get())
        return
    result = reconciliation.compute(warehouse.get())
    n = result.national
    below = result.below_threshold(settings.reconciliation_match_threshold)
    yield dg.MaterializeResult(metadata={
        "persons_kpr": int(n.get("persons_kpr", 0) or 0), "persons_iplos": int(n.get("persons_iplos", 0) or 0),
        "persons_both": int(n.get("persons_both", 0) or 0),
        "national_match_rate": float(n.get("match_rate") or 0.0),
        "match_threshold": settings.reconciliation_match_threshold,
        "municipalities_below_threshold": dg.MetadataValue.json(below),
    })
