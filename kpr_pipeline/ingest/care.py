"""Loading one KPR-helse og omsorg report: verify, stream, apply the rules, pseudonymise, publish.

A report's checked rows wait in ``PendingRows`` until it has been read to the end (spilled to
committed ``stage_care_*`` rows when there are many), and the report is published in one transaction. Which submission of a municipality and year is
``current`` is decided by ``uttrekkstidspunkt`` (newest wins), never by the order files arrive:
publishing a newer submission replaces exactly that municipality's data for the year; an older
one is recorded as ``superseded`` with its rejected rows and changes nothing else.

The raw identifier exists only inside ``_stage_batch``: it is pseudonymised there (``pid``; for
2017 also the IPLOS linkage pseudonym) and never stored, logged or raised.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.care.report import ReportFault, ReportHeader, parse_file_name, read_report
from kpr_pipeline.domain.care.rules import CheckedBatch, check_batch
from kpr_pipeline.domain.landing import sha256_file
from kpr_pipeline.domain.pseudonyms import pseudonymise
from kpr_pipeline.domain.reasons import message_for_codes
from kpr_pipeline.ingest.landing_zone import now, quarantine, record_quarantine, register_file
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.ingest.pending import PendingRows
from kpr_pipeline.warehouse.engine import bulk_insert

DATASET = "helse_omsorg"
FIRST_REPORTING_YEAR = 2017
IPLOS_LINKAGE_YEAR = 2017
STAGED = ("care_services", "care_rejected_rows", "care_warnings", "care_function_assessments")
DATA_TABLES = ("care_services", "care_warnings", "care_function_assessments")  # the current submission's data


@dataclass
class ReportResult:
    data_file: str
    reporting_year: int
    kommunenummer: str | None
    status: str  # current | superseded | quarantined
    persons: int = 0
    services: int = 0
    rows_rejected: int = 0
    late: bool | None = None
    services_person_rejected: int = 0  # tjeneste elements of rejected persons (not rows of their own)
    services_loaded: int = 0
    services_merged: int = 0
    persons_rejected: int = 0
    reason: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)


def report_files(landing: Path, years: set[int] | None = None) -> list[Path]:
    """Report files in ``<landing>/helse_omsorg/<year>/``, oldest extract time first (by file name)."""
    root = landing / DATASET
    if not root.is_dir():
        return []
    folders = [d for d in root.iterdir() if d.is_dir() and d.name.isdigit() and len(d.name) == 4
               and (years is None or int(d.name) in years)]
    return sorted((p for d in folders for p in d.glob("*.xml")), key=lambda p: (p.parent.name, _stamp(p), p.name))


def reporting_years(today: dt.date | None = None) -> range:
    """Years whose reports can arrive: from 2017 (KPR's first) to the last year that has ended."""
    return range(FIRST_REPORTING_YEAR, (today or dt.date.today()).year)


def stray_files(landing: Path, years: range | None = None) -> list[Path]:
    """Report files that no reporting-year partition will take (another folder, a year out of range):
    every run quarantines them, so nothing waits in the landing zone unnoticed."""
    root = landing / DATASET
    years = years or reporting_years()
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.xml")
                  if not (p.parent.parent.name == DATASET and _folder_year(p) in years))


def _folder_year(path: Path) -> int | None:
    name = path.parent.name
    return int(name) if name.isdigit() and len(name) == 4 else None


def _stamp(path: Path) -> str:
    parsed = parse_file_name(path.name)
    return parsed.stamp if parsed else ""


def registry_path(path: Path) -> str:
    return f"{DATASET}/{path.parent.name}/{path.name}"


def partition_of(path: Path) -> str:
    """The reporting-year partition that processes ``path``: its folder's year, or for a stray file the
    last reporting year (any run quarantines strays)."""
    year = _folder_year(path)
    return str(year if year in reporting_years() and path.parent.parent.name == DATASET else reporting_years()[-1])


def ready_files(landing: Path) -> list[Path]:
    """Every report file a run may take: those in the year folders and the strays."""
    return sorted(set(report_files(landing)) | set(stray_files(landing)))


def unprocessed(files: list[Path], registry: dict[str, str]) -> list[Path]:
    """Files whose content (SHA-256) the registry does not have under their path."""
    return [p for p in files if registry.get(registry_path(p)) != (sha256_file(p) if p.is_file() else None)]


def process_report(warehouse: Warehouse, landing: Path, path: Path, production: bool, key: str,
                   iplos_key: str | None = None, run_id: str | None = None) -> ReportResult:
    """Load the report at ``path`` (current or superseded) or quarantine it; never raises for bad input."""
    year = _folder_year(path)
    name = parse_file_name(path.name)
    code = name.kommunenummer if name else None
    keys = (production, key, iplos_key)
    if year is None or year not in reporting_years() or path.parent.parent.name != DATASET:
        return _quarantine(warehouse, landing, path, year, code, "reporting_year_out_of_range",
                           f"folder {path.parent.name}: reports are for years {FIRST_REPORTING_YEAR} to last year",
                           keys, run_id)
    if path.is_symlink() or not path.is_file():
        return _quarantine(warehouse, landing, path, year, code, "not_a_regular_file", "not read", keys, run_id)
    if name is None or name.reporting_year != year:
        return _quarantine(warehouse, landing, path, year, code, "file_name_invalid",
                           f"{path.name} in folder {year}", keys, run_id)
    sha = sha256_file(path)
    pending = PendingRows(warehouse, STAGED)
    result = ReportResult(path.name, year, code, "current")
    try:
        header = _stage(warehouse, path, year, code, name.stamp, production, key, iplos_key, pending, result)
        with warehouse.begin() as conn:
            _publish(conn, path.name, year, code, header, sha, pending, result)
            register_file(conn, DATASET, registry_path(path), sha, path.stat().st_size, result.status,
                          f"{year}/{code}", run_id)
        return result
    except ReportFault as fault:
        return _quarantine(warehouse, landing, path, year, code, fault.code, fault.detail, keys, run_id)
    finally:
        pending.discard()


def _stage(warehouse, path: Path, year: int, code: str, stamp: str, production: bool, key: str,
           iplos_key: str | None, pending: PendingRows, result: ReportResult) -> ReportHeader:
    header = None
    for item in read_report(path):
        if isinstance(item, ReportHeader):
            header = item
            if (header.kommunenummer, header.rapporteringsaar, header.stamp) != (code, year, stamp):
                raise ReportFault("header_file_name_mismatch",
                                  "kommunenummer, rapporteringsaar or uttrekkstidspunkt differ from the file name")
            if code not in reference.municipality_codes_valid(year, reporters_only=True):
                raise ReportFault("municipality_not_valid_in_year", f"{code} is not a municipality in {year}")
            continue
        _stage_batch(pending, check_batch(item, year, code, production), year, code, path.name, key, iplos_key, result)
    result.late = header.late
    return header


def _stage_batch(pending: PendingRows, checked: CheckedBatch, year: int, code: str, data_file: str, key: str,
                 iplos_key: str | None, result: ReportResult) -> None:
    persons, services = checked.persons, checked.services
    pid = pseudonymise(persons["ident"], key)  # the raw identifier stops here
    linkage = pseudonymise(persons["ident"], iplos_key) if iplos_key and year == IPLOS_LINKAGE_YEAR else None
    persons = persons.drop(columns=["ident"]).assign(pid=pid, iplos_pseudonym=linkage)
    by_person = persons.set_index("person_index")
    common = {"reporting_year": year, "kommunenummer": code, "data_file": data_file}
    result.persons += len(persons)
    result.services += len(services)
    result.services_person_rejected += int(services["person_rejected"].sum())

    rejected_people = persons[persons["reasons"].map(bool)]
    rejected_services = services[services["reasons"].map(bool) & ~services["person_rejected"]]
    rows = []
    for p in rejected_people.itertuples():
        record = {"pid": p.pid, "personId_type": p.id_type, "kjonn": p.kjonn, "fodselsaar": int(p.fodselsaar),
                  "bostedskommune": p.bostedskommune, "dodsdato": _iso(p.dodsdato),
                  "tjenester": int((services["person_index"] == p.person_index).sum())}
        rows.append((p.pid, p.reasons, p.person_index, None, record))
    for s in rejected_services.itertuples():
        record = {"tjenestekode": int(s.tjenestekode_reported), "fraDato": _iso(s.fra_dato),
                  "tilDato": _iso(s.til_dato), "timerPerUke": None if pd.isna(s.timer_per_uke) else s.timer_per_uke}
        rows.append((by_person.at[s.person_index, "pid"], s.reasons, s.person_index, s.service_index, record))
    if rows:
        pending.add("care_rejected_rows", pd.DataFrame({
            "pid": [r[0] for r in rows], "reasons": [",".join(r[1]) for r in rows],
            "message": [message_for_codes(r[1]) for r in rows], "person_index": [r[2] for r in rows],
            "service_index": pd.array([r[3] for r in rows], dtype="Int64"),
            "record": [json.dumps(r[4], ensure_ascii=False) for r in rows], **common}))
        for r in rows:
            for c in r[1]:
                result.reasons[c] = result.reasons.get(c, 0) + 1
    result.rows_rejected += len(rows)
    result.persons_rejected += len(rejected_people)

    loaded = services[~services["reasons"].map(bool) & ~services["person_rejected"] & ~services["merged"]]
    person_of = by_person.loc[loaded["person_index"]]
    result.services_loaded += len(loaded)
    result.services_merged += int(services["merged"].sum())
    pending.add("care_services", pd.DataFrame({
        "pid": person_of["pid"].to_numpy(), "kjonn": person_of["kjonn"].to_numpy(),
        "fodselsaar": person_of["fodselsaar"].to_numpy(), "bostedskommune": person_of["bostedskommune"].to_numpy(),
        "tjenestekode": loaded["tjenestekode"].to_numpy(), "fra_dato": loaded["fra_dato"].dt.date.to_numpy(),
        "til_dato": loaded["til_dato"].dt.date.to_numpy(), "timer_per_uke": loaded["timer_per_uke"].to_numpy(),
        "iplos_pseudonym": person_of["iplos_pseudonym"].to_numpy(),
        "person_index": loaded["person_index"].to_numpy(), "service_index": loaded["service_index"].to_numpy(),
        **common}))
    if len(checked.warnings):
        w = checked.warnings
        pending.add("care_warnings", pd.DataFrame({
            "pid": by_person.loc[w["person_index"], "pid"].to_numpy(), "person_index": w["person_index"].to_numpy(),
            "service_index": w["service_index"].to_numpy(), "reason": w["reason"].to_numpy(), **common}))
    a = checked.assessments
    if len(a):
        pending.add("care_function_assessments", a.drop(columns=["person_index"]).assign(
            pid=by_person.loc[a["person_index"], "pid"].to_numpy(), dato=a["dato"].dt.date, **common))


def _iso(value) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()


def _publish(conn: Connection, data_file: str, year: int, code: str, header: ReportHeader, sha: str,
             pending: PendingRows, result: ReportResult) -> None:
    """One transaction: the file's earlier records go, then it becomes current (if newest) or superseded."""
    _forget_file(conn, data_file, year)
    newest_other = conn.execute(sa.text(
        "SELECT MAX(uttrekkstidspunkt) FROM care_submissions WHERE reporting_year = :y AND kommunenummer = :k "
        "AND status <> 'quarantined'"), {"y": year, "k": code}).all()[0][0]
    current = newest_other is None or header.uttrekkstidspunkt >= _aware(newest_other)
    result.status = "current" if current else "superseded"
    if current:
        for table in DATA_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table} WHERE reporting_year = :y AND kommunenummer = :k"),
                         {"y": year, "k": code})
        conn.execute(sa.text("UPDATE care_submissions SET status = 'superseded' WHERE reporting_year = :y "
                             "AND kommunenummer = :k AND status = 'current'"), {"y": year, "k": code})
    for table in (STAGED if current else ("care_rejected_rows",)):
        pending.publish(conn, table)
    bulk_insert(conn, "care_submissions", pd.DataFrame({
        "reporting_year": [year], "kommunenummer": [code], "data_file": [data_file], "sha256": [sha],
        "uttrekkstidspunkt": [header.uttrekkstidspunkt], "status": [result.status], "persons": [result.persons],
        "services": [result.services], "rows_rejected": [result.rows_rejected], "late": [header.late],
        "processed_at": [now()], "reason": [None], "persons_rejected": [result.persons_rejected],
        "services_loaded": [result.services_loaded],
        "services_rejected": [result.rows_rejected - result.persons_rejected],
        "services_merged": [result.services_merged], "services_person_rejected": [result.services_person_rejected],
        "fagsystem": [header.fagsystem[:200]],
    }))


def _forget_file(conn: Connection, data_file: str, year: int) -> bool:
    """Remove what an earlier processing of this file recorded; True when it was the current submission."""
    was_current = conn.execute(sa.text(
        "SELECT COUNT(*) FROM care_submissions WHERE data_file = :f AND reporting_year = :y AND status = 'current'"),
        {"f": data_file, "y": year}).all()[0][0] > 0
    if was_current:
        for table in DATA_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table} WHERE data_file = :f AND reporting_year = :y"),
                         {"f": data_file, "y": year})
    for table in ("care_rejected_rows", "care_submissions"):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE data_file = :f AND reporting_year = :y"),
                     {"f": data_file, "y": year})
    return was_current


def _quarantine(warehouse, landing: Path, path: Path, year: int, code: str | None, reason: str, detail: str,
                keys: tuple, run_id) -> ReportResult:
    event = quarantine(landing, [path], path, reason, detail, path if not path.is_symlink() else None)
    with warehouse.begin() as conn:
        was_current = _forget_file(conn, path.name, year) if year is not None else False
        record_quarantine(conn, DATASET, event)
        if year is not None:
            bulk_insert(conn, "care_submissions", pd.DataFrame({
                "reporting_year": [year], "kommunenummer": [code], "data_file": [path.name], "sha256": [event.sha256],
                "status": ["quarantined"], "persons": [0], "services": [0], "rows_rejected": [0],
                "processed_at": [now()], "reason": [f"{reason}: {detail}"[:500]],
            }))
        register_file(conn, DATASET, registry_path(path), event.sha256 or "", None, "quarantined", f"{year}/{code}",
                      run_id)
    result = ReportResult(path.name, year, code, "quarantined", reason=reason)
    if was_current:  # the newest remaining submission takes over
        result.reason = f"{reason} (previous current submission; the newest earlier one is reloaded)"
        _promote_newest(warehouse, landing, year, code, keys, run_id)
    return result


def _promote_newest(warehouse, landing: Path, year: int, code: str | None, keys: tuple, run_id) -> None:
    rows = warehouse.query(
        "SELECT data_file FROM care_submissions WHERE reporting_year = :y AND kommunenummer = :k "
        "AND status = 'superseded' ORDER BY uttrekkstidspunkt DESC", y=year, k=code)
    for data_file in rows["data_file"]:
        path = landing / DATASET / str(year) / data_file
        if path.is_file():
            process_report(warehouse, landing, path, *keys, run_id=run_id)
            return


def _aware(value) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
