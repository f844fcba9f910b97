"""The quality report asset: the stewards' report and the Great Expectations Data Docs it links to."""

import datetime as dt
import os
from zoneinfo import ZoneInfo

import dagster as dg

from kpr_pipeline.defs.quality.history import check_history
from kpr_pipeline.defs.resources import WarehouseResource, warehouse_asset
from kpr_pipeline.quality import data_docs, report
from kpr_pipeline.settings import get_settings

GROUP = "quality"
OSLO = ZoneInfo("Europe/Oslo")


def _all_check_keys() -> list[dg.AssetCheckKey]:
    """Every check of the code location, not only of the run's job (an in-process run has no repository)."""
    from kpr_pipeline.definitions import build_definitions

    keys = build_definitions(get_settings()).get_repository_def().asset_graph.asset_check_keys
    return sorted(keys, key=lambda k: (k.asset_key.to_user_string(), k.name))


@warehouse_asset(
    group_name=GROUP, kinds={"html"},
    description="The data stewards' quality report (one HTML file under KPR_OUTPUT_DIR/quality/, one per day "
    "and latest.html) and the Great Expectations Data Docs of the contract validations "
    "(KPR_OUTPUT_DIR/data_docs/). Rebuilt after every run that changes data.",
)
def quality_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    checks = check_history(context.instance, _all_check_keys())
    docs = data_docs.build(settings.output_dir)
    today = dt.datetime.now(OSLO).date()
    data = report.gather(warehouse.get(), checks, today, settings.kuhr_stale_days,
                         settings.reconciliation_match_threshold)
    directory = report.quality_dir(settings.output_dir)
    links = {"Data Docs (Great Expectations)": os.path.relpath(docs, directory)} if docs else {}
    publication = settings.output_dir / "publication"
    if publication.is_dir():
        links["Publication files"] = os.path.relpath(publication, directory)
    path = report.write(settings.output_dir, report.render(data, links), data.generated_at)
    context.log.info(f"quality report written: {path.resolve()}")
    metadata = {"path": dg.MetadataValue.path(str(path.resolve())),
                "latest": dg.MetadataValue.path(str((directory / "latest.html").resolve())),
                "summary": dg.MetadataValue.md(report.markdown_summary(data, path.resolve())),
                "check_results_read": len(checks)}
    if docs:
        metadata["data_docs"] = dg.MetadataValue.path(str(docs.resolve()))
    return dg.MaterializeResult(metadata=metadata)


quality_report_job = dg.define_asset_job("quality_report_job", selection=dg.AssetSelection.assets(quality_report),
                                         description="Rebuild the quality report and the Data Docs.")
