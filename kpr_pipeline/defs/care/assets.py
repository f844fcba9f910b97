"""KPR-helse og omsorg assets: the municipal reports of a reporting year, and the year's completeness."""


import datetime as dt

import dagster as dg

from kpr_pipeline.defs.care.partitions import reporting_year_partitions
from kpr_pipeline.defs.resources import LandingZoneResource, WarehouseResource, warehouse_asset
from kpr_pipeline.defs.run_partitions import partition_years
from kpr_pipeline.domain.care.report import parse_file_name
from kpr_pipeline.ingest.care import DATASET, process_report, registry_path, report_files, stray_files, unprocessed
from kpr_pipeline.ingest.landing_zone import processed_files
from kpr_pipeline.quality.completeness import evaluate
from kpr_pipeline.settings import get_settings

GROUP = "helse_omsorg"


class ReportConfig(dg.Config):
    """Which reports of the partition's years to process.

    ``only_new`` skips files whose content the registry already has (sensors, ``kpr-pipeline run``);
    ``kommunenummer`` limits the run to those municipalities (a steward re-running one submission);
    ``files`` to those landing paths (``helse_omsorg/<year>/<name>``, what the sensor found settled).
    With none of them, every report of the years is processed again (an explicit request).
    """

    only_new: bool = False
    kommunenummer: list[str] = []
    files: list[str] = []


@warehouse_asset(
    group_name=GROUP,
    partitions_def=reporting_year_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"sql"},
    description="Municipal reports of the reporting year: validated (XSD, DTD refused) or quarantined, "
    "records checked, persons pseudonymised; the newest submission per municipality is current. "
    "One transaction per file; a resubmission replaces only its municipality's data.",
)
def care_reports(context: dg.AssetExecutionContext, config: ReportConfig, warehouse: WarehouseResource,
                 landing_zone: LandingZoneResource) -> dg.MaterializeResult:
    settings = get_settings()
    w = warehouse.get()
    files = report_files(landing_zone.landing, set(partition_years(context))) + stray_files(landing_zone.landing)
    if config.kommunenummer:
        wanted = set(config.kommunenummer)
        files = [p for p in files if (name := parse_file_name(p.name)) and name.kommunenummer in wanted]
    if config.files:
        wanted_paths = set(config.files)
        files = [p for p in files if registry_path(p) in wanted_paths]
    if config.only_new:
        files = unprocessed(files, processed_files(w, DATASET))
    counts = {"current": 0, "superseded": 0, "quarantined": 0, "persons": 0, "services": 0, "rows_rejected": 0}
    reasons: dict[str, int] = {}
    quarantined = []
    for i, path in enumerate(files, start=1):
        result = process_report(w, landing_zone.landing, path, settings.production, settings.pseudonym_key,
                                settings.iplos_pseudonym_key, context.run.run_id)
        counts[result.status] += 1
        counts["persons"] += result.persons
        counts["services"] += result.services
        counts["rows_rejected"] += result.rows_rejected
        for code, n in result.reasons.items():
            reasons[code] = reasons.get(code, 0) + n
        if result.status == "quarantined":
            quarantined.append(f"{result.data_file}: {result.reason}")
            context.log.warning(f"quarantined {result.data_file}: {result.reason}")
        if i % 100 == 0:
            context.log.info(f"{i}/{len(files)} reports processed")
    if 2017 in partition_years(context) and not settings.iplos_pseudonym_key:
        context.log.info("IPLOS_PSEUDONYM_KEY is not set: 2017 persons get no IPLOS linkage pseudonym")
    return dg.MaterializeResult(metadata={
        "files": len(files), **counts,
        "rejected_by_reason": dg.MetadataValue.json(dict(sorted(reasons.items()))),
        "quarantined_files": dg.MetadataValue.json(quarantined),
        "municipalities": dg.MetadataValue.json(sorted(config.kommunenummer)) if config.kommunenummer else "all",
    })


class CompletenessConfig(dg.Config):
    """``as_of`` (ISO date-time): evaluate the deadline as of this moment instead of now."""

    as_of: str | None = None


@warehouse_asset(
    group_name=GROUP,
    partitions_def=reporting_year_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[care_reports],
    kinds={"sql"},
    description="Completeness of the reporting year per municipality (on time, late, resubmitted, missing, "
    "quarantined, gap accepted) against the municipalities valid that year; final once the deadline has "
    "passed and nothing is missing.",
)
def care_completeness(context: dg.AssetExecutionContext, config: CompletenessConfig,
                      warehouse: WarehouseResource) -> dg.MaterializeResult:
    as_of = dt.datetime.fromisoformat(config.as_of) if config.as_of else None
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.timezone.utc)
    years = {}
    for year in partition_years(context):
        c = evaluate(warehouse.get(), year, as_of)
        years[str(year)] = {"expected": c.expected, "submitted": c.submitted, "late": c.late,
                            "missing": c.missing, "accepted_gaps": c.accepted_gaps, "resubmitted": len(c.resubmitted),
                            "persons_in_two_municipalities": c.persons_in_two_municipalities,
                            "deadline_passed": c.deadline_passed, "final": c.final}
        if c.missing:
            context.log.warning(f"{year}: {len(c.missing)} municipalities missing: {', '.join(c.missing)}")
    return dg.MaterializeResult(metadata={
        "years": dg.MetadataValue.json(years),
        "missing": sum(len(y["missing"]) for y in years.values()),
        "final_years": dg.MetadataValue.json([y for y, v in years.items() if v["final"]]),
    })
