"""Loading one KPR-KUHR delivery: verify, read in chunks, apply the rules, pseudonymise, load.

One delivery is one transaction: what it loaded before is deleted first, so processing it again
replaces it exactly. The raw identifier exists only inside ``_load_chunk``: it is pseudonymised
there and never stored, logged or raised.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpr_pipeline.domain.kuhr import format as fmt
from kpr_pipeline.domain.kuhr.rules import check_rows, message_for
from kpr_pipeline.domain.landing import KUHR_FORMAT, MANIFEST_SUFFIX, Manifest, ManifestError, read_manifest, sha256_file
from kpr_pipeline.domain.pseudonyms import pseudonymise
from kpr_pipeline.ingest import landing_zone
from kpr_pipeline.ingest.csv_files import read_chunks
from kpr_pipeline.ingest.landing_zone import (FileFault, data_file_fault, now, quarantine, record_quarantine,
                                             register_file)
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert, fill_lookup, hold_lock, table_columns

DATASET = "kuhr"
CLAIM_TABLES = ("kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings", "kuhr_rejected_rows", "kuhr_claims")
#: Deliveries publish one at a time (runs on different delivery dates may load at once on PostgreSQL).
PUBLICATION_LOCK = "kpr.kuhr.publication"
#: How far the clocks of the hosts that load deliveries may disagree (NTP keeps them within milliseconds; see
#: ``_drop_late_resends``). Small on purpose: a delivery published within the margin before this load began is
#: compared as well, and in a backfill that is the previous delivery of the same run.
CLOCK_MARGIN = dt.timedelta(seconds=2)


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
    actual = sha256_file(data_path)
    if actual != manifest.sha256:
        return _quarantine(warehouse, landing, delivery_id, [data_path, manifest_path], data_path, "checksum_mismatch",
                           "SHA-256 of the data file differs from the manifest", data_path, manifest, run_id)
    try:
        return _load(warehouse, delivery_id, manifest, data_path, production, key,
                     (f"{DATASET}/{data_path.name}", actual, data_path.stat().st_size, run_id))
    except FileFault as fault:  # nothing of the file was published
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


STAGED = ("kuhr_claims", "kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings", "kuhr_rejected_rows")


def _clear_stage(warehouse: Warehouse, delivery_id: str) -> None:
    with warehouse.begin() as conn:
        for table in STAGED:
            conn.execute(sa.text(f"DELETE FROM stage_{table} WHERE delivery_id = :d"), {"d": delivery_id})


def _load(warehouse: Warehouse, delivery_id: str, manifest: Manifest, data_path: Path, production: bool, key: str,
          registry_entry: tuple) -> DeliveryResult:
    """Stage the delivery chunk by chunk (each chunk committed), then publish it in one transaction."""
    delivery_date = dt.date.fromisoformat(manifest.delivery_date)
    result = DeliveryResult(delivery_id, "loaded", delivery_date, manifest.row_count)
    load_id, started = uuid.uuid4().hex, now()
    _clear_stage(warehouse, delivery_id)  # what a crashed attempt left behind
    try:
        seen = np.empty(0, dtype=np.uint64)  # hashes of regning_ids loaded by this delivery so far
        credit_notes: list[pd.DataFrame] = []
        unknown_columns: set[str] = set()
        offset = 0
        for chunk in read_chunks(data_path, fmt.REQUIRED_COLUMNS):
            unknown_columns |= set(chunk.columns) - set(fmt.KNOWN_COLUMNS)
            with warehouse.begin() as conn:
                seen, notes = _load_chunk(conn, delivery_id, delivery_date, chunk, offset, production, key, seen,
                                          result, load_id)
            credit_notes.append(notes)
            offset += len(chunk)
        if offset != manifest.row_count:
            raise FileFault("row_count_mismatch", f"{offset} data rows, manifest says {manifest.row_count}")
        with warehouse.begin() as conn:
            _publish(conn, delivery_id, delivery_date, manifest, load_id, started, credit_notes, unknown_columns,
                     result)
            register_file(conn, DATASET, *registry_entry[:3], "loaded", delivery_id, registry_entry[3])
        return result
    finally:
        _clear_stage(warehouse, delivery_id)


def _publish(conn: Connection, delivery_id, delivery_date, manifest: Manifest, load_id: str, started: dt.datetime,
             credit_notes, unknown_columns, result: DeliveryResult) -> None:
    """The delivery's one transaction: replace what it loaded before with the staged rows, then credits.
    Deliveries publish one at a time, each seeing what the others published."""
    hold_lock(conn, PUBLICATION_LOCK)
    previous_months = {_as_date(r[0]) for r in conn.execute(sa.text(
        "SELECT DISTINCT behandlingsmaaned FROM kuhr_claims WHERE delivery_id = :d AND behandlingsmaaned IS NOT NULL"),
        {"d": delivery_id})}  # a reprocessed delivery also changes the months it no longer touches
    recheck = _delete_delivery(conn, delivery_id)
    _drop_late_resends(conn, delivery_id, load_id, started, result)
    for table in STAGED:
        columns = ", ".join(table_columns(conn, table))
        conn.execute(sa.text(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM stage_{table} WHERE load_id = :l"),
                     {"l": load_id})
    notes = pd.concat(credit_notes, ignore_index=True) if credit_notes else pd.DataFrame()
    recheck |= _load_credit_notes(conn, delivery_id, notes, result)
    _mark_credited(conn, recheck)
    _mark_suspected_doubles(conn, delivery_id)
    months = conn.execute(sa.text(
        "SELECT DISTINCT behandlingsmaaned FROM kuhr_claims WHERE delivery_id = :d OR regning_id IN "
        "(SELECT kreditert_regning_id FROM kuhr_claims WHERE delivery_id = :d AND kreditering)"), {"d": delivery_id})
    result.months = {_as_date(r[0]) for r in months if r[0] is not None} | previous_months
    if result.months:
        bulk_insert(conn, "kuhr_touched_months", pd.DataFrame({
            "delivery_id": delivery_id, "treatment_month": sorted(result.months), "processed_at": now()}))
    reason = f"unknown columns ignored: {', '.join(sorted(unknown_columns))}" if unknown_columns else None
    bulk_insert(conn, "kuhr_deliveries", pd.DataFrame({
        "delivery_id": [delivery_id], "data_file": [manifest.data_file], "sha256": [manifest.sha256],
        "delivery_date": [delivery_date], "status": ["loaded"], "rows_in_file": [manifest.row_count],
        "rows_loaded": [result.rows_loaded], "rows_rejected": [result.rows_rejected],
        "rows_duplicate": [result.rows_duplicate], "processed_at": [now()], "reason": [reason],
    }))


def _drop_late_resends(conn: Connection, delivery_id: str, load_id: str, started: dt.datetime,
                       result: DeliveryResult) -> None:
    """A regning that a concurrent run published after this delivery looked for resends (while staging) is a
    resend now: counted as a duplicate, not loaded twice. Only the claims of deliveries published since this
    load began are compared, so a load without a concurrent one costs one small query."""
    rivals = [r[0] for r in conn.execute(sa.text(
        "SELECT delivery_id FROM kuhr_deliveries WHERE status = 'loaded' AND processed_at >= :t AND delivery_id <> :d"),
        {"t": started - CLOCK_MARGIN, "d": delivery_id})]
    if not rivals:
        return
    fill_lookup(conn, rivals)
    resent = [r[0] for r in conn.execute(sa.text(
        "SELECT DISTINCT s.regning_id FROM stage_kuhr_claims s JOIN kuhr_claims c ON c.regning_id = s.regning_id "
        "WHERE s.load_id = :l AND c.delivery_id IN (SELECT v FROM kpr_lookup)"), {"l": load_id})]
    if not resent:
        return
    fill_lookup(conn, resent)
    for table in ("kuhr_claims", "kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings"):
        conn.execute(sa.text(f"DELETE FROM stage_{table} WHERE load_id = :l AND regning_id IN (SELECT v FROM kpr_lookup)"),
                     {"l": load_id})
    result.rows_loaded -= len(resent)
    result.rows_duplicate += len(resent)


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _existing(conn: Connection, column: str, values: pd.Series, where: str = "", **params) -> set[str]:
    """Which of ``values`` exist in ``kuhr_claims.<column>`` (optionally with a condition)."""
    if values.empty:
        return set()
    fill_lookup(conn, values)
    rows = conn.execute(sa.text(
        f"SELECT DISTINCT c.{column} FROM kuhr_claims c JOIN kpr_lookup l ON c.{column} = l.v {where}"), params)
    return {r[0] for r in rows}


def _load_chunk(conn, delivery_id, delivery_date, chunk: pd.DataFrame, offset: int, production: bool, key: str,
                seen: np.ndarray, result: DeliveryResult, load_id: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Check, pseudonymise and stage one chunk; credit notes are returned for after the whole file."""
    n = len(chunk)
    chunk = chunk.reset_index(drop=True)
    checked = check_rows(chunk, delivery_date, production)
    pid = pseudonymise(chunk["pasient_id"], key)  # the raw identifier stops here
    rejected = checked.rejected
    row_number = offset + np.arange(1, n + 1)

    # Resends: a regning_id already loaded (by an earlier delivery, or earlier in this one) is a duplicate.
    ids = chunk["regning_id"]
    hashes = pd.util.hash_array(ids.to_numpy(dtype=object))
    in_warehouse = ids.isin(_existing(conn, "regning_id", ids[~rejected], "WHERE c.delivery_id <> :d",
                                      d=delivery_id)).to_numpy()
    earlier_here = np.isin(hashes, seen)
    first_in_chunk = ~pd.Series(hashes).where(~rejected).duplicated().to_numpy() | rejected
    duplicate = ~rejected & (in_warehouse | earlier_here | ~first_in_chunk)

    is_credit = checked.typed["kreditering"].to_numpy(dtype=bool)
    load = ~rejected & ~duplicate & ~is_credit
    notes = ~rejected & ~duplicate & is_credit
    seen = np.concatenate([seen, hashes[load | notes]])

    result.rows_duplicate += int(duplicate.sum())
    result.rows_rejected += int(rejected.sum())
    for code, mask in checked.reasons.items():
        if mask.any():
            result.reasons[code] = result.reasons.get(code, 0) + int(mask.sum())

    claims = _claims_frame(chunk, checked, pid, delivery_id, row_number)
    _stage_claims(conn, claims[load], checked, load, chunk, delivery_id, row_number, load_id)
    result.rows_loaded += int(load.sum())

    if rejected.any():
        idx = np.flatnonzero(rejected)
        codes = checked.reason_lists(idx)
        record = chunk.iloc[idx].copy()
        record["pasient_id"] = pid[idx]
        bulk_insert(conn, "stage_kuhr_rejected_rows", pd.DataFrame({
            "delivery_id": delivery_id, "row_number": row_number[idx],
            "reasons": [",".join(c) for c in codes], "message": [message_for(c) for c in codes],
            "record": [json.dumps(r, ensure_ascii=False) for r in record.to_dict(orient="records")],
            "load_id": load_id,
        }))
    pending = claims[notes].copy()
    pending["_record"] = [json.dumps(r, ensure_ascii=False) for r in
                          chunk[notes].assign(pasient_id=pid[notes]).to_dict(orient="records")]
    pending["_warnings"] = [[w for w, m in checked.warnings.items() if m[i]] for i in np.flatnonzero(notes)]
    pending["_takster"] = [checked.takster[checked.takster["row"] == i][["takst", "antall"]] for i in np.flatnonzero(notes)]
    return seen, pending


def _claims_frame(chunk, checked, pid, delivery_id, row_number) -> pd.DataFrame:
    t = checked.typed
    return pd.DataFrame({
        "regning_id": chunk["regning_id"], "delivery_id": delivery_id, "row_number": row_number,
        "regningsnummer": pd.to_numeric(chunk["regningsnummer"], errors="coerce").astype("Int64"),
        "pid": pid, "pasient_id_type": chunk["pasient_id_type"], "kjonn": chunk["kjonn"],
        "fodselsaar": pd.Series(t["fodselsaar"]).astype("Int64"), "bostedskommune": chunk["bostedskommune"],
        "praksis_id": chunk["praksis_id"], "praksistype": chunk["praksistype"], "tjeneste": chunk["tjeneste"],
        "behandler_hpr": chunk["behandler_hpr"], "praksiskommune": chunk["praksiskommune"],
        "tidspunkt": t["tidspunkt"], "behandlingsmaaned": t["behandlingsmaaned"],
        "mottatt_dato": t["mottatt_dato"], "kreditering": t["kreditering"],
        "kreditert_regning_id": chunk["kreditert_regning_id"].where(chunk["kreditert_regning_id"] != "", None),
        "fritak_egenandel": (chunk["fritak_egenandel"] if "fritak_egenandel" in chunk.columns
                             else pd.Series([""] * len(chunk))).replace("", None),
        "egenandel": t["egenandel"], "refusjon": t["refusjon"], "is_contact": t["is_contact"],
        "kontakttype": t["kontakttype"], "hoveddiagnose": t["hoveddiagnose"], "late": t["late"],
        "credited": False, "suspected_double": False,
    })


def _stage_claims(conn, claims: pd.DataFrame, checked, load: np.ndarray, chunk, delivery_id, row_number,
                  load_id: str) -> None:
    if claims.empty:
        return
    bulk_insert(conn, "stage_kuhr_claims", claims.assign(load_id=load_id))
    rows = np.flatnonzero(load)
    takster = checked.takster[np.isin(checked.takster["row"].to_numpy(), rows)]
    bulk_insert(conn, "stage_kuhr_claim_takster", pd.DataFrame({
        "regning_id": chunk["regning_id"].to_numpy()[takster["row"].to_numpy()], "delivery_id": delivery_id,
        "takst": takster["takst"].to_numpy(), "antall": takster["antall"].to_numpy(), "load_id": load_id}))
    diag = checked.diagnoser[np.isin(checked.diagnoser["row"].to_numpy(dtype=np.int64), rows)]
    if len(diag):
        bulk_insert(conn, "stage_kuhr_claim_diagnoser", pd.DataFrame({
            "regning_id": chunk["regning_id"].to_numpy()[diag["row"].to_numpy(dtype=np.int64)],
            "delivery_id": delivery_id, "position": diag["position"].to_numpy(), "system": diag["system"].to_numpy(),
            "kode": diag["kode"].to_numpy(), "load_id": load_id}))
    frames = []
    for reason, mask in checked.warnings.items():
        hit = np.flatnonzero(mask & load)
        if len(hit):
            frames.append(pd.DataFrame({"delivery_id": delivery_id, "row_number": row_number[hit],
                                        "regning_id": chunk["regning_id"].to_numpy()[hit], "reason": reason}))
    if frames:
        bulk_insert(conn, "stage_kuhr_warnings", pd.concat(frames, ignore_index=True).assign(load_id=load_id))


def _load_credit_notes(conn, delivery_id: str, notes: pd.DataFrame, result: DeliveryResult) -> set[str]:
    """Credit notes after every normal claim of the delivery is in: their originals may come later in the file."""
    if notes.empty:
        return set()
    resent = notes["regning_id"].isin(_existing(conn, "regning_id", notes["regning_id"])).to_numpy()
    if resent.any():  # published by a concurrent run after this delivery looked for resends
        result.rows_duplicate += int(resent.sum())
        notes = notes[~resent].reset_index(drop=True)
        if notes.empty:
            return set()
    originals = notes["kreditert_regning_id"].astype(str)
    normal = _existing(conn, "regning_id", originals, "WHERE NOT c.kreditering")
    credited_before = _existing(conn, "kreditert_regning_id", originals, "WHERE c.kreditering")
    orphan = ~originals.isin(normal).to_numpy()
    duplicate = originals.isin(credited_before).to_numpy() | originals.duplicated().to_numpy()
    bad = orphan | duplicate
    good = notes[~bad].drop(columns=["_record", "_warnings", "_takster"])
    if len(good):
        bulk_insert(conn, "kuhr_claims", good)
        takster = [t.assign(regning_id=r, delivery_id=delivery_id)
                   for t, r in zip(notes["_takster"][~bad], notes["regning_id"][~bad])]
        bulk_insert(conn, "kuhr_claim_takster", pd.concat(takster, ignore_index=True)[
            ["regning_id", "delivery_id", "takst", "antall"]])
        warn = [(rn, rid, w) for rn, rid, ws in zip(notes["row_number"][~bad], notes["regning_id"][~bad],
                                                    notes["_warnings"][~bad]) for w in ws]
        if warn:
            bulk_insert(conn, "kuhr_warnings", pd.DataFrame(warn, columns=["row_number", "regning_id", "reason"]).assign(
                delivery_id=delivery_id))
    if bad.any():
        codes = [["orphan_credit"] if o else ["duplicate_credit"] for o in orphan[bad]]
        bulk_insert(conn, "kuhr_rejected_rows", pd.DataFrame({
            "delivery_id": delivery_id, "row_number": notes["row_number"][bad].to_numpy(),
            "reasons": [c[0] for c in codes], "message": [message_for(c) for c in codes],
            "record": notes["_record"][bad].to_numpy()}))
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


def _mark_suspected_doubles(conn, delivery_id: str) -> None:
    """Normal claims sharing practice, bill number, time and person are suspected doubles (never cleared):
    every claim of a group with two or more regninger, one of them in this delivery, is marked. One GROUP BY
    (a pairwise self-join grew with the square of a group's size: a delivery repeating one claim
    thousands of times ran out of memory)."""
    conn.execute(sa.text("""
UPDATE kuhr_claims SET suspected_double = TRUE
FROM (SELECT praksis_id, regningsnummer, tidspunkt, pid FROM kuhr_claims
      WHERE NOT kreditering AND pid IN (SELECT pid FROM kuhr_claims WHERE delivery_id = :d AND NOT kreditering)
      GROUP BY praksis_id, regningsnummer, tidspunkt, pid
      HAVING COUNT(DISTINCT regning_id) > 1 AND BOOL_OR(delivery_id = :d)) g
WHERE NOT kuhr_claims.kreditering AND NOT kuhr_claims.suspected_double AND kuhr_claims.praksis_id = g.praksis_id
  AND kuhr_claims.regningsnummer = g.regningsnummer AND kuhr_claims.tidspunkt = g.tidspunkt
  AND kuhr_claims.pid = g.pid"""), {"d": delivery_id})
