"""Loading one KPR-KUHR delivery: verify, check and pseudonymise (``kuhr_check``), publish.

One delivery is one transaction: what it loaded before is deleted first, so processing it again
replaces it exactly. The raw identifier exists only while DuckDB reads the file in ``kuhr_check``:
it is pseudonymised there and never stored, logged or raised.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpr_pipeline.domain.kuhr import format as fmt
from kpr_pipeline.domain.kuhr.rules import message_for
from kpr_pipeline.domain.landing import KUHR_FORMAT, MANIFEST_SUFFIX, Manifest, ManifestError, read_manifest
from kpr_pipeline.ingest import landing_zone
from kpr_pipeline.ingest.landing_zone import (FileFault, data_file_fault, now, quarantine, record_quarantine,
                                             register_file)
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert, fill_lookup, hold_lock

if TYPE_CHECKING:
    from kpr_pipeline.ingest.kuhr_check import DeliveryCheck

DATASET = "kuhr"
CLAIM_TABLES = ("kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings", "kuhr_rejected_rows", "kuhr_claims")
#: Deliveries publish one at a time (runs on different delivery dates may load at once on PostgreSQL).
PUBLICATION_LOCK = "kpr.kuhr.publication"


@dataclass
class DeliveryResult:
    delivery_id: str
    status: str  # loaded | quarantined
    delivery_date: dt.date | None = None
    rows_in_file: int | None = None
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    reason: str | None = None
    months: set[dt.date] = field(default_factory=set)  # treatment months whose counted claims changed
    reasons: dict[str, int] = field(default_factory=dict)


def ready_manifests(landing: Path) -> list[Path]:
    return landing_zone.ready_manifests(landing, DATASET)


def delivery_id_of(manifest_path: Path) -> str:
    return manifest_path.name[: -len(MANIFEST_SUFFIX)]


def partition_date(manifest_path: Path) -> dt.date:
    """The delivery-date partition of a delivery: its manifest's delivery_date, or for a manifest that
    cannot be read the date in its name (``kuhr_YYYYMMDD_NNN``), or else today, so it is still quarantined."""
    try:
        return dt.date.fromisoformat(json.loads(manifest_path.read_text(encoding="utf-8"))["delivery_date"])
    except Exception:  # noqa: BLE001 - unreadable manifests are quarantined by process_delivery
        pass
    try:
        return dt.datetime.strptime(manifest_path.name.split("_")[1], "%Y%m%d").date()
    except (IndexError, ValueError):
        return dt.date.today()


def unprocessed(manifests: list[Path], registry: dict[str, str]) -> list[tuple[Path, str]]:
    """(manifest, data file SHA-256) of the deliveries whose content the registry does not have."""
    return landing_zone.unprocessed_manifests(manifests, registry, DATASET)


def deliveries_on(landing: Path, dates: set[dt.date]) -> list[Path]:
    """The ready deliveries whose partition is one of ``dates``, in delivery order."""
    return [m for m in ready_manifests(landing) if partition_date(m) in dates]


def process_delivery(warehouse: Warehouse, landing: Path, manifest_path: Path, production: bool, key: str,
                     run_id: str | None = None) -> DeliveryResult:
    """Load the delivery of ``manifest_path`` or quarantine it; never raises for bad input."""
    delivery_id = delivery_id_of(manifest_path)
    try:
        manifest = read_manifest(manifest_path, KUHR_FORMAT)
    except ManifestError as exc:  # the data file is found by name: it cannot be left waiting for a manifest
        siblings = [manifest_path.parent / f"{delivery_id}{ext}" for ext in (".csv.gz", ".csv")]
        data = next((p for p in siblings if p.is_file()), None)
        return _quarantine(warehouse, landing, delivery_id, [manifest_path, *siblings], manifest_path, exc.code,
                           str(exc), data, None, run_id)
    data_path = manifest_path.parent / manifest.data_file
    delivery_id = manifest.delivery_id if manifest.delivery_id else delivery_id
    fault = data_file_fault(data_path)
    if fault:
        return _quarantine(warehouse, landing, delivery_id, [manifest_path], manifest_path, *fault, None, manifest,
                           run_id)
    try:
        return _load(warehouse, delivery_id, manifest, data_path, production, key,
                     (f"{DATASET}/{data_path.name}", manifest.sha256, data_path.stat().st_size, run_id))
    except FileFault as fault:  # nothing of the file was published (checksum_mismatch included)
        return _quarantine(warehouse, landing, delivery_id, [data_path, manifest_path], data_path, fault.code,
                           fault.detail, data_path, manifest, run_id)


def _quarantine(warehouse, landing, delivery_id, files, reason_for, code, detail, data_file: Path | None,
                manifest: Manifest | None, run_id) -> DeliveryResult:
    """Move the files to quarantine/ and record it; ``data_file`` (if any) is hashed for the reason file."""
    event = quarantine(landing, files, reason_for, code, detail, data_file)
    with warehouse.begin() as conn:
        hold_lock(conn, PUBLICATION_LOCK)
        _delete_delivery(conn, delivery_id)
        record_quarantine(conn, DATASET, event)
        bulk_insert(conn, "kuhr_deliveries", pd.DataFrame({
            "delivery_id": [delivery_id], "data_file": [manifest.data_file if manifest else None],
            "sha256": [event.sha256], "delivery_date": [dt.date.fromisoformat(manifest.delivery_date) if manifest else None],
            "status": ["quarantined"], "rows_in_file": [manifest.row_count if manifest else None],
            "rows_loaded": [0], "rows_rejected": [0], "rows_duplicate": [0], "processed_at": [now()], "reason": [code],
        }))
        register_file(conn, DATASET, event.path, event.sha256 or "", None, "quarantined", delivery_id, run_id)
    return DeliveryResult(delivery_id, "quarantined", dt.date.fromisoformat(manifest.delivery_date) if manifest else None,
                          manifest.row_count if manifest else None, reason=code)


def _delete_delivery(conn: Connection, delivery_id: str) -> set[str]:
    """Delete what the delivery loaded before; return the originals its credit notes had credited."""
    credited = conn.execute(sa.text(
        "SELECT kreditert_regning_id FROM kuhr_claims WHERE delivery_id = :d AND kreditering"), {"d": delivery_id})
    originals = {r[0] for r in credited}
    for table in (*CLAIM_TABLES, "kuhr_deliveries"):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE delivery_id = :d"), {"d": delivery_id})
    return originals


def _load(warehouse: Warehouse, delivery_id: str, manifest: Manifest, data_path: Path, production: bool, key: str,
          registry_entry: tuple) -> DeliveryResult:
    """Verify and check the whole file in DuckDB (``kuhr_check``: a DuckDB warehouse's own connection, else a
    private DuckDB), then publish it in one transaction."""
    from kpr_pipeline.ingest.kuhr_check import DeliveryCheck  # DuckDB: not at definition load (sensor ticks)

    delivery_date = dt.date.fromisoformat(manifest.delivery_date)
    result = DeliveryResult(delivery_id, "loaded", delivery_date, manifest.row_count)
    with ExitStack() as stack:
        host = stack.enter_context(warehouse.connect()) if warehouse.is_duckdb else None
        check = stack.enter_context(DeliveryCheck(key, production, manifest.delivery_date,
                                                  host.connection.driver_connection if host else None))
        rows = check.read_verified(data_path, manifest.sha256)
        if rows != manifest.row_count:
            raise FileFault("row_count_mismatch", f"{rows} data rows, manifest says {manifest.row_count}")
        result.rows_rejected, result.rows_duplicate = check.counts()
        result.reasons = check.reason_counts()
        unknown_columns = sorted(set(check.columns) - set(fmt.KNOWN_COLUMNS))
        with _transaction(warehouse, host) as conn:
            _publish(conn, check, delivery_id, delivery_date, manifest, unknown_columns, result)
            register_file(conn, DATASET, *registry_entry[:3], "loaded", delivery_id, registry_entry[3])
    return result


@contextmanager
def _transaction(warehouse: Warehouse, host: Connection | None) -> Iterator[Connection]:
    """The publishing transaction: on the connection that hosts the check (DuckDB), or on a connection taken now
    (PostgreSQL: a restart during the seconds of a check must not cost the load)."""
    if host is None:
        with warehouse.begin() as conn:
            yield conn
    else:
        with host.begin():
            yield host


def _publish(conn: Connection, check: DeliveryCheck, delivery_id, delivery_date, manifest: Manifest,
             unknown_columns, result: DeliveryResult) -> None:
    """The delivery's one transaction: replace what it loaded before with the checked rows, then credits.
    Deliveries publish one at a time, each seeing what the others published, so a regning published by
    another delivery a moment ago is a resend here."""
    hold_lock(conn, PUBLICATION_LOCK)
    previous_months = {_as_date(r[0]) for r in conn.execute(sa.text(
        "SELECT DISTINCT behandlingsmaaned FROM kuhr_claims WHERE delivery_id = :d AND behandlingsmaaned IS NOT NULL"),
        {"d": delivery_id})}  # a reprocessed delivery also changes the months it no longer touches
    recheck = _delete_delivery(conn, delivery_id)
    resent = _existing(conn, "regning_id", check.candidate_ids())
    check.set_resent(sorted(resent))
    result.rows_duplicate += len(resent)
    written = {table: check.write(conn, table, delivery_id) for table in check.OUTPUTS}
    result.rows_loaded += written["kuhr_claims"]
    recheck |= _load_credit_notes(conn, delivery_id, *check.credit_notes(delivery_id), result)
    _mark_credited(conn, recheck)
    _mark_suspected_doubles(conn, delivery_id, check.repeated_keys())
    months = conn.execute(sa.text(
        "SELECT DISTINCT behandlingsmaaned FROM kuhr_claims WHERE delivery_id = :d OR regning_id IN "
        "(SELECT kreditert_regning_id FROM kuhr_claims WHERE delivery_id = :d AND kreditering)"), {"d": delivery_id})
    result.months = {_as_date(r[0]) for r in months if r[0] is not None} | previous_months
    if result.months:
        bulk_insert(conn, "kuhr_touched_months", pd.DataFrame({
            "delivery_id": delivery_id, "treatment_month": sorted(result.months), "processed_at": now()}))
    reason = f"unknown columns ignored: {', '.join(unknown_columns)}" if unknown_columns else None
    bulk_insert(conn, "kuhr_deliveries", pd.DataFrame({
        "delivery_id": [delivery_id], "data_file": [manifest.data_file], "sha256": [manifest.sha256],
        "delivery_date": [delivery_date], "status": ["loaded"], "rows_in_file": [manifest.row_count],
        "rows_loaded": [result.rows_loaded], "rows_rejected": [result.rows_rejected],
        "rows_duplicate": [result.rows_duplicate], "processed_at": [now()], "reason": [reason],
    }))


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _existing(conn: Connection, column: str, values, where: str = "", **params) -> set[str]:
    """Which of ``values`` (see ``fill_lookup``) exist in ``kuhr_claims.<column>`` (optionally with a condition)."""
    if not len(values):
        return set()
    fill_lookup(conn, values)
    rows = conn.execute(sa.text(
        f"SELECT DISTINCT c.{column} FROM kuhr_claims c JOIN kpr_lookup l ON c.{column} = l.v {where}"), params)
    return {r[0] for r in rows}


def _load_credit_notes(conn, delivery_id: str, notes: pd.DataFrame, takster: pd.DataFrame, warnings: pd.DataFrame,
                       result: DeliveryResult) -> set[str]:
    """Credit notes after every normal claim of the delivery is in: their originals may come later in the file.
    A note whose original was never loaded, or was credited already, is rejected."""
    if notes.empty:
        return set()
    originals = notes["kreditert_regning_id"].astype(str)
    normal = _existing(conn, "regning_id", originals, "WHERE NOT c.kreditering")
    credited_before = _existing(conn, "kreditert_regning_id", originals, "WHERE c.kreditering")
    orphan = ~originals.isin(normal).to_numpy()
    duplicate = originals.isin(credited_before).to_numpy() | originals.duplicated().to_numpy()
    bad = orphan | duplicate
    good_rows = set(notes["row_number"][~bad])
    if good_rows:
        bulk_insert(conn, "kuhr_claims", notes[~bad].drop(columns=["record"]))
        bulk_insert(conn, "kuhr_claim_takster", takster[takster["row_number"].isin(good_rows)].drop(columns=["row_number"]))
        bulk_insert(conn, "kuhr_warnings", warnings[warnings["row_number"].isin(good_rows)])
    if bad.any():
        codes = [["orphan_credit"] if o else ["duplicate_credit"] for o in orphan[bad]]
        bulk_insert(conn, "kuhr_rejected_rows", pd.DataFrame({
            "delivery_id": delivery_id, "row_number": notes["row_number"][bad].to_numpy(),
            "reasons": [c[0] for c in codes], "message": [message_for(c) for c in codes],
            "record": notes["record"][bad].to_numpy()}))
        for c in codes:
            result.reasons[c[0]] = result.reasons.get(c[0], 0) + 1
    result.rows_loaded += int((~bad).sum())
    result.rows_rejected += int(bad.sum())
    return set(originals)


def _mark_credited(conn, originals: set[str]) -> None:
    """``credited`` is true exactly when a loaded credit note annuls the regning."""
    if not originals:
        return
    fill_lookup(conn, sorted(originals))
    conn.execute(sa.text(
        "UPDATE kuhr_claims SET credited = EXISTS (SELECT 1 FROM kuhr_claims n WHERE n.kreditering "
        "AND n.kreditert_regning_id = kuhr_claims.regning_id) "
        "WHERE regning_id IN (SELECT v FROM kpr_lookup) AND NOT kreditering"))


def _mark_suspected_doubles(conn, delivery_id: str, repeated_in_file: pd.DataFrame) -> None:
    """Normal claims sharing practice, bill number, time and person are suspected doubles (never cleared): every
    claim of a group with two or more regninger, one of them in this delivery, is marked. The groups within the
    delivery come from its check (``repeated_in_file``); those reaching other deliveries from one join of this
    delivery's claims with the others' (a GROUP BY over all claims of the delivery's persons cost seconds)."""
    key = ("praksis_id", "regningsnummer", "tidspunkt", "pid")
    on = " AND ".join(f"o.{c} = m.{c}" for c in key)
    across = Warehouse.query_in(conn, f"""
SELECT DISTINCT {', '.join(f'o.{c}' for c in key)} FROM kuhr_claims m JOIN kuhr_claims o ON {on}
WHERE m.delivery_id = :d AND NOT m.kreditering AND o.delivery_id <> :d AND NOT o.kreditering""", d=delivery_id)
    groups = pd.concat([repeated_in_file[list(key)], across[list(key)]], ignore_index=True)
    if groups.empty:
        return
    conn.execute(sa.text("CREATE TEMPORARY TABLE IF NOT EXISTS kpr_double_keys (praksis_id VARCHAR, "
                         "regningsnummer BIGINT, tidspunkt TIMESTAMP WITH TIME ZONE, pid VARCHAR)"))
    conn.execute(sa.text("DELETE FROM kpr_double_keys"))
    bulk_insert(conn, "kpr_double_keys", groups)
    conn.execute(sa.text(f"""
UPDATE kuhr_claims SET suspected_double = TRUE FROM kpr_double_keys g
WHERE NOT kuhr_claims.kreditering AND NOT kuhr_claims.suspected_double
  AND {' AND '.join(f'kuhr_claims.{c} = g.{c}' for c in key)}"""))
