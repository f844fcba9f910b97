"""The municipal-report sensor: files in ``<landing>/helse_omsorg/<year>/`` that have settled.

A report has no manifest; it is ready when its size and modification time have not changed for the
settle interval (``KPR_REPORT_SETTLE_SECONDS``, default 30 s; spec/landing.md). The cursor remembers, per file, when it was first seen at its
present size, and which (size, mtime) it already requested; the warehouse's ``landing_files``
registry decides whether that content was processed (so a restart without cursor re-lists and the
registry answers). A resubmission is a new file (its name carries the extract time): it is
processed like any other and becomes current if it is the newest.
"""


import json
import time
from pathlib import Path

import dagster as dg

from kpr_pipeline.defs.care.assets import care_completeness, care_reports
from kpr_pipeline.defs.resources import LandingZoneResource, WarehouseResource
from kpr_pipeline.ingest.care import DATASET, partition_of, ready_files, registry_path, unprocessed
from kpr_pipeline.ingest.landing_zone import processed_files

care_year_job = dg.define_asset_job(
    "care_year_job", selection=dg.AssetSelection.assets(care_reports, care_completeness),
    description="Process the municipal reports of the selected reporting years and evaluate completeness. "
    "Run config ops.care_reports.config.kommunenummer: [\"4601\"] re-runs one municipality's submissions.")


def only_new(files: list[str] | None = None) -> dict:
    config = {"only_new": True, **({"files": files} if files else {})}
    return {"ops": {"care_reports": {"config": config}}}


def settled_files(landing: Path, seen: dict, now: float, settle: float) -> tuple[list[Path], dict]:
    """(files unchanged for ``settle`` seconds, the updated ``seen`` map path -> [size, mtime_ns, since])."""
    ready, updated = [], {}
    for path in ready_files(landing):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        key = registry_path(path)
        size, mtime = st.st_size, st.st_mtime_ns
        previous = seen.get(key)
        since = previous[2] if previous and previous[:2] == [size, mtime] else now
        updated[key] = [size, mtime, since]
        if now - since >= settle:
            ready.append(path)
    return ready, updated


@dg.sensor(job=care_year_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="New or resubmitted municipal reports (ready when unchanged for KPR_REPORT_SETTLE_SECONDS).")
def care_report_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource,
                       warehouse: WarehouseResource):
    cursor = json.loads(context.cursor) if context.cursor else {"seen": {}, "requested": {}}
    ready, seen = settled_files(landing_zone.landing, cursor["seen"], time.time(), landing_zone.report_settle_seconds)
    requested = cursor["requested"]
    fresh = [p for p in ready if requested.get(registry_path(p)) != seen[registry_path(p)][:2]]
    new = unprocessed(fresh, processed_files(warehouse.get(), DATASET)) if fresh else []
    by_year: dict[str, list[str]] = {}
    for path in new:
        by_year.setdefault(partition_of(path), []).append(registry_path(path))
    requests = [
        dg.RunRequest(run_key=f"{year}|{'|'.join(f'{f}:{seen[f][0]}:{seen[f][1]}' for f in sorted(files))}",
                      partition_key=year, run_config=only_new(sorted(files)),
                      tags={"kpr/reports": str(len(files))})
        for year, files in sorted(by_year.items())
    ]
    for path in fresh:
        requested[registry_path(path)] = seen[registry_path(path)][:2]
    requested = {k: v for k, v in requested.items() if k in seen}
    context.update_cursor(json.dumps({"seen": seen, "requested": requested}))
    if not requests:
        return dg.SkipReason("no new settled reports")
    return requests


care_sensors = [care_report_sensor]
care_jobs = [care_year_job]
