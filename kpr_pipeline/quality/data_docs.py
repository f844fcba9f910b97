"""Great Expectations Data Docs for the contract validations the checks run: a static site under
``<output>/data_docs/`` (``index.html``), linked from the quality report.

Each check saves GX's result document (``save_result``, cheap, in the check's own process); the
quality report builds the site from the newest results of every contract in one go (``build``), so
checks running in parallel never write the site at the same time and GX is imported once. Results are
validated with no unexpected values returned (``gx.validate_frame``), and any value list a result
could still carry is emptied before it is stored: no identifier or pseudonym reaches the site.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from pathlib import Path

#: results kept per contract (older ones are deleted when the site is built)
KEEP_PER_CONTRACT = 10
SITE_NAME = "kpr_data_docs"
_VALUE_LISTS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
                "unexpected_list", "unexpected_index_list", "unexpected_rows", "details")


def docs_dir(output_dir: Path) -> Path:
    return Path(output_dir) / "data_docs"


def _results_dir(output_dir: Path) -> Path:
    return docs_dir(output_dir) / ".results"


def _without_values(result_json: dict) -> dict:
    result_json = json.loads(json.dumps(result_json))
    for r in result_json.get("results", []):
        values = r.get("result") or {}
        for key in _VALUE_LISTS:
            if key in values:
                values[key] = [] if isinstance(values[key], list) else {}
    return result_json


def save_result(output_dir: Path, contract: str, result_json: dict | None) -> Path | None:
    """Keep one validation result of ``contract`` for the next site build (atomically written)."""
    if result_json is None:
        return None
    folder = _results_dir(output_dir) / contract
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}_{uuid.uuid4().hex[:8]}.json"
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(_without_values(result_json)), encoding="utf-8")
    os.replace(partial, path)
    return path


def build(output_dir: Path) -> Path | None:
    """Build the site from the newest ``KEEP_PER_CONTRACT`` results of each contract; its index, or None
    when no validation has been saved yet."""
    root = _results_dir(output_dir)
    contracts = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not contracts:
        return None
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (ExpectationSuiteIdentifier,
                                                                            ValidationResultIdentifier)

    site = docs_dir(output_dir)
    for generated in ("validations", "expectations", "static", "index.html"):
        target = site / generated  # rebuilt from the kept results: nothing stale stays listed
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    context = gx.get_context(mode="ephemeral")
    context.add_data_docs_site(SITE_NAME, {
        "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site.resolve())}})
    schema = ExpectationSuiteValidationResultSchema()
    for folder in contracts:
        files = sorted(folder.glob("*.json"))
        for old in files[:-KEEP_PER_CONTRACT]:
            old.unlink()
        for path in files[-KEEP_PER_CONTRACT:]:
            result = schema.load(json.loads(path.read_text(encoding="utf-8")))
            run_time = dt.datetime.strptime(path.name.split("_")[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.timezone.utc)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=f"contract_{folder.name}"),
                run_id=RunIdentifier(run_name=path.stem, run_time=run_time), batch_identifier=folder.name)
            context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=[SITE_NAME])
    return site / "index.html"
