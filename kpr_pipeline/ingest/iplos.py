"""Loading one IPLOS extract (one reporting year, 2007-2017): verify, read in chunks, check, load.

An extract is the unit of work: its rows replace everything loaded for its year, in one
transaction, so a re-delivery with a new checksum replaces the year and processing the same
extract twice changes nothing. Rejected rows are kept under the extract's year with their reasons.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from kpr_pipeline.domain import iplos
from kpr_pipeline.domain.landing import IPLOS_FORMAT, MANIFEST_SUFFIX, ManifestError, read_manifest, sha256_file
from kpr_pipeline.domain.reasons import message_for_codes
from kpr_pipeline.ingest import landing_zone
from kpr_pipeline.ingest.csv_files import read_chunks
from kpr_pipeline.ingest.landing_zone import (FileFault, data_file_fault, now, quarantine, record_quarantine,
                                             register_file)
from kpr_pipeline.ingest.pending import PendingRows
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert

DATASET = "iplos"
STAGED = ("iplos_services", "iplos_rejected_rows")
NAME = re.compile(r"^iplos_(\d{4})$")


@dataclass
class ExtractResult:
    reporting_year: int | None
    status: str  # loaded | quarantined
    rows_in_file: int | None = None
    rows_loaded: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)


def ready_manifests(landing: Path) -> list[Path]:
    return landing_zone.ready_manifests(landing, DATASET)


def year_of(manifest_path: Path) -> int | None:
    """The extract's year from the manifest name ``iplos_<year>.manifest.json`` (None if it is not one)."""
    m = NAME.match(manifest_path.name[: -len(MANIFEST_SUFFIX)])
    return int(m.group(1)) if m else None


def unprocessed(manifests: list[Path], registry: dict[str, str]) -> list[tuple[Path, str]]:
    """(manifest, data file SHA-256) of the extracts whose content the registry does not have."""
    return landing_zone.unprocessed_manifests(manifests, registry, DATASET)


def process_extract(warehouse: Warehouse, landing: Path, manifest_path: Path, run_id: str | None = None) -> ExtractResult:
    """Load the extract of ``manifest_path`` (replacing its year) or quarantine it; never raises for bad input."""
    year = year_of(manifest_path)
    stem = manifest_path.name[: -len(MANIFEST_SUFFIX)]
    try:
        manifest = read_manifest(manifest_path, IPLOS_FORMAT)
    except ManifestError as exc:
        siblings = [manifest_path.parent / f"{stem}{ext}" for ext in (".csv.gz", ".csv")]
        data = next((p for p in siblings if p.is_file()), None)
        return _quarantine(warehouse, landing, year, [manifest_path, *siblings], manifest_path, exc.code, str(exc),
                           data, None, run_id)
    data_path = manifest_path.parent / manifest.data_file
    if year is None or manifest.delivery_id != f"iplos_{year}" or year not in iplos.IPLOS_YEARS:
        return _quarantine(warehouse, landing, year, [data_path, manifest_path], manifest_path, "manifest_invalid",
                           "delivery_id must be iplos_<year> for a year 2007-2017, as the file name says",
                           data_path, manifest, run_id)
    fault = data_file_fault(data_path)
    if fault:
        return _quarantine(warehouse, landing, year, [manifest_path], manifest_path, *fault, None, manifest,
                           run_id)
    actual = sha256_file(data_path)
    if actual != manifest.sha256:
        return _quarantine(warehouse, landing, year, [data_path, manifest_path], data_path, "checksum_mismatch",
                           "SHA-256 of the data file differs from the manifest", data_path, manifest, run_id)
    pending = PendingRows(warehouse, STAGED)
    result = ExtractResult(year, "loaded", manifest.row_count)
    try:
        offset = 0
        for chunk in read_chunks(data_path, iplos.REQUIRED_COLUMNS):
            _check_chunk(pending, chunk.reset_index(drop=True), year, offset, result)
            offset += len(chunk)
        if offset != manifest.row_count:
            raise FileFault("row_count_mismatch", f"{offset} data rows, manifest says {manifest.row_count}")
        with warehouse.begin() as conn:
            for table in ("iplos_services", "iplos_rejected_rows", "iplos_extracts"):
                conn.execute(sa.text(f"DELETE FROM {table} WHERE reporting_year = :y"), {"y": year})
            for table in STAGED:
                pending.publish(conn, table)
            bulk_insert(conn, "iplos_extracts", _extract_row(year, manifest.data_file, actual, "loaded", result))
            register_file(conn, DATASET, f"{DATASET}/{data_path.name}", actual, data_path.stat().st_size, "loaded",
                          f"iplos_{year}", run_id)
        return result
    except FileFault as fault:
        return _quarantine(warehouse, landing, year, [data_path, manifest_path], data_path, fault.code, fault.detail,
                           data_path, manifest, run_id)
    finally:
        pending.discard()


def _check_chunk(pending: PendingRows, chunk: pd.DataFrame, year: int, offset: int, result: ExtractResult) -> None:
    checked = iplos.check_rows(chunk, year)
    rejected = checked.rejected
    row_number = offset + np.arange(1, len(chunk) + 1)
    accepted = checked.typed[~rejected].assign(reporting_year=year, row_number=row_number[~rejected])
    pending.add("iplos_services", accepted)
    result.rows_loaded += int((~rejected).sum())
    if rejected.any():
        idx = np.flatnonzero(rejected)
        codes = checked.reason_lists(idx)
        pending.add("iplos_rejected_rows", pd.DataFrame({
            "reporting_year": year, "row_number": row_number[idx], "reasons": [",".join(c) for c in codes],
            "message": [message_for_codes(c) for c in codes],
            "record": [json.dumps(r, ensure_ascii=False) for r in chunk.iloc[idx].to_dict(orient="records")]}))
        result.rows_rejected += len(idx)
        for c in codes:
            for code in c:
                result.reasons[code] = result.reasons.get(code, 0) + 1


def _extract_row(year, data_file, sha, status, result: ExtractResult, reason=None) -> pd.DataFrame:
    return pd.DataFrame({
        "reporting_year": [year], "data_file": [data_file], "sha256": [sha], "status": [status],
        "rows_in_file": [result.rows_in_file], "rows_loaded": [result.rows_loaded],
        "rows_rejected": [result.rows_rejected], "processed_at": [now()], "reason": [reason]})


def _quarantine(warehouse, landing, year, files, reason_for, code, detail, data_file, manifest, run_id) -> ExtractResult:
    event = quarantine(landing, files, reason_for, code, detail, data_file)
    result = ExtractResult(year, "quarantined", manifest.row_count if manifest else None, reason=code)
    with warehouse.begin() as conn:
        record_quarantine(conn, DATASET, event)
        if year is not None:  # the year keeps what an earlier good extract loaded; the event is recorded
            conn.execute(sa.text("DELETE FROM iplos_extracts WHERE reporting_year = :y AND status = 'quarantined'"),
                         {"y": year})
            bulk_insert(conn, "iplos_extracts", _extract_row(year, manifest.data_file if manifest else None,
                                                             event.sha256, "quarantined", result, code))
        register_file(conn, DATASET, event.path, event.sha256 or "", None, "quarantined",
                      f"iplos_{year}" if year else "iplos", run_id)
    return result
