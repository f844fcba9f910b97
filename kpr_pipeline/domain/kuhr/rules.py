"""The row rules of a KPR-KUHR delivery, vectorised over a chunk of rows.

Each rule is one small function that returns a mask of the rows it rejects (or warns about), named
by its reason code (``kpr_pipeline/domain/reasons.py``). ``check_rows`` applies them all and
derives the typed columns that are loaded (treatment month, contact, contact type, late, ...).
Cross-row semantics (resends, credits, suspected doubles) need the warehouse and live in
``loader.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpr_pipeline.domain import identifiers, reference
from kpr_pipeline.domain.kuhr import format as fmt
from kpr_pipeline.domain.landing import nul_rows
from kpr_pipeline.domain.reasons import KUHR_ROW_REASONS, KUHR_WARNINGS

OSLO = "Europe/Oslo"
_NON_CHAPTER = "".join(sorted(set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") - fmt.ICPC2_CHAPTERS))


@dataclass
class CheckedRows:
    """Rule outcomes for one chunk: reason masks, warning masks, and the typed columns."""

    reasons: dict[str, np.ndarray]
    warnings: dict[str, np.ndarray]
    typed: pd.DataFrame
    takster: pd.DataFrame  # row, takst, antall (for rows with well-formed takster)
    diagnoser: pd.DataFrame  # row, position, system, kode

    @property
    def rejected(self) -> np.ndarray:
        n = len(self.typed)
        out = np.zeros(n, dtype=bool)
        for mask in self.reasons.values():
            out |= mask
        return out

    def reason_lists(self, rows: np.ndarray) -> list[list[str]]:
        codes = list(self.reasons)
        matrix = np.column_stack([self.reasons[c][rows] for c in codes]) if codes else np.zeros((len(rows), 0), bool)
        return [[codes[j] for j in np.flatnonzero(r)] for r in matrix]


def message_for(codes: list[str]) -> str:
    return " ".join(KUHR_ROW_REASONS.get(c) or KUHR_WARNINGS[c] for c in codes)


@lru_cache(maxsize=1)
def _municipality_validity() -> pd.DataFrame:
    m = reference.municipalities()
    return pd.DataFrame({
        "code": m["code"].astype(str),
        "valid_from": m["valid_from"].astype(int),
        "valid_to": m["valid_to"].fillna(9999).astype(int),
    }).set_index("code")


@lru_cache(maxsize=1)
def _tariff() -> pd.DataFrame:
    t = reference.takster()
    return pd.DataFrame({
        "tjeneste": t["tjeneste"], "takst": t["takst"].astype(str), "kontakt": t["kontakt"],
        "kontakttype": t["kontakttype"], "rang": t["rang"].astype("float"),
        "typisk": t["egenandel_typisk"].astype(float) + t["refusjon_typisk"].astype(float),
    })


def _municipality_status(codes: pd.Series, years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valid in the year, retired the year before) per code."""
    validity = _municipality_validity()
    found = validity.reindex(codes.to_numpy())
    valid_from = found["valid_from"].to_numpy(dtype=float)
    valid_to = found["valid_to"].to_numpy(dtype=float)
    known = ~np.isnan(valid_from)
    valid = known & (valid_from <= years) & (valid_to >= years)
    retired = known & (valid_to == years - 1)
    return valid, retired


def check_rows(rows: pd.DataFrame, delivery_date: dt.date, production: bool) -> CheckedRows:
    """Apply every row rule to ``rows`` (all columns as text, empty string for empty)."""
    n = len(rows)
    reasons: dict[str, np.ndarray] = {}
    warnings: dict[str, np.ndarray] = {}

    def reject(code: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool)
        reasons[code] = reasons.get(code, np.zeros(n, dtype=bool)) | mask

    def col(name: str) -> pd.Series:
        return rows[name] if name in rows.columns else pd.Series([""] * n, index=rows.index, dtype="object")

    reject("nul_character", nul_rows(rows))
    empty = {c: (col(c).str.len() == 0).to_numpy() for c in fmt.NON_EMPTY}
    reject("missing_value", np.logical_or.reduce(list(empty.values())))

    def present(name: str) -> np.ndarray:
        return ~empty[name] if name in empty else (col(name).str.len() > 0).to_numpy()

    def fails(name: str, pattern: str) -> np.ndarray:
        return present(name) & ~col(name).str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)

    reject("invalid_regning_id", col("regning_id").str.len().to_numpy() > 64)
    reject("invalid_regningsnummer", fails("regningsnummer", r"[0-9]{1,18}"))
    reject("invalid_praksis_id", fails("praksis_id", r"[0-9]{10}"))
    reject("invalid_behandler_hpr", fails("behandler_hpr", r"[0-9]{7,9}"))
    tjeneste = col("tjeneste")
    praksistype = col("praksistype")
    known_service = tjeneste.isin(fmt.SERVICES).to_numpy()
    known_type = praksistype.isin(fmt.ALL_PRAKSISTYPER).to_numpy()
    reject("unknown_tjeneste", present("tjeneste") & ~known_service)
    reject("invalid_praksistype", present("praksistype") & ~known_type)
    allowed = np.array([p in fmt.PRAKSISTYPER.get(s, ()) for s, p in zip(tjeneste.tolist(), praksistype.tolist())],
                       dtype=bool)
    reject("tjeneste_praksistype_mismatch", known_service & known_type & ~allowed)
    reject("invalid_kjonn", present("kjonn") & ~col("kjonn").isin(["1", "2", "9"]).to_numpy())

    # Time: the treatment date and month are taken in Norwegian local time.
    shape_ok = col("tidspunkt").str.fullmatch(fmt.ISO_DATETIME).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_datetime(col("tidspunkt").where(shape_ok, None), format="ISO8601", utc=True, errors="coerce")
    ts_ok = shape_ok & parsed.notna().to_numpy()
    reject("invalid_tidspunkt", present("tidspunkt") & ~ts_ok)
    local = parsed.dt.tz_convert(OSLO)
    local_day = local.dt.tz_localize(None).dt.normalize().to_numpy().astype("datetime64[D]")
    reject("tidspunkt_before_start", ts_ok & (local_day < np.datetime64(fmt.KUHR_START)))
    mottatt_shape = col("mottatt_dato").str.fullmatch(fmt.ISO_DATE).fillna(False).to_numpy(dtype=bool)
    mottatt = pd.to_datetime(col("mottatt_dato").where(mottatt_shape, None), format="%Y-%m-%d", errors="coerce")
    mottatt_ok = mottatt_shape & mottatt.notna().to_numpy()
    mottatt_day = mottatt.to_numpy().astype("datetime64[D]")
    reject("invalid_mottatt_dato", present("mottatt_dato") & ~mottatt_ok)
    reject("tidspunkt_after_mottatt", ts_ok & mottatt_ok & (local_day > mottatt_day))
    reject("mottatt_after_delivery", mottatt_ok & (mottatt_day > np.datetime64(delivery_date)))
    year = np.where(ts_ok, local_day.astype("datetime64[Y]").astype(int) + 1970, -1)

    # Person.
    ids = identifiers.check_identifiers(col("pasient_id"), col("pasient_id_type"),
                                        np.where(ts_ok, local_day, np.datetime64("NaT")), production)
    for code in np.unique(ids.status):
        if code != identifiers.OK:
            reject(code, present("pasient_id") & (ids.status == code))
    fodselsaar = pd.to_numeric(col("fodselsaar").where(col("fodselsaar").str.fullmatch(r"[0-9]{4}"), None),
                               errors="coerce").to_numpy()
    reject("fodselsaar_mismatch", present("fodselsaar") & (np.isnan(fodselsaar) | (
        (ids.birth_year > 0) & (fodselsaar != ids.birth_year))))

    # Municipalities, valid on the treatment date.
    bosted_valid, bosted_retired = _municipality_status(col("bostedskommune"), year)
    reject("invalid_bostedskommune", ts_ok & present("bostedskommune") & ~bosted_valid & ~bosted_retired)
    warnings["retired_municipality"] = ts_ok & bosted_retired & ~bosted_valid
    praksis_valid, praksis_retired = _municipality_status(col("praksiskommune"), year)
    reject("invalid_praksiskommune", ts_ok & present("praksiskommune") & ~praksis_valid & ~praksis_retired)

    # Credit notes.
    kreditering = col("kreditering")
    reject("invalid_kreditering", present("kreditering") & ~kreditering.isin(["0", "1"]).to_numpy())
    is_credit = (kreditering == "1").to_numpy()
    has_ref = (col("kreditert_regning_id").str.len() > 0).to_numpy()
    reject("missing_kreditert_regning_id", is_credit & ~has_ref)
    reject("unexpected_kreditert_regning_id", (kreditering == "0").to_numpy() & has_ref)

    # Amounts.
    egen_ok = col("egenandel").str.fullmatch(fmt.DECIMAL).fillna(False).to_numpy(dtype=bool)
    ref_ok = col("refusjon").str.fullmatch(fmt.DECIMAL).fillna(False).to_numpy(dtype=bool)
    reject("invalid_amount", (present("egenandel") & ~egen_ok) | (present("refusjon") & ~ref_ok))
    egenandel = pd.to_numeric(col("egenandel").where(egen_ok, None), errors="coerce").to_numpy(dtype=float)
    refusjon = pd.to_numeric(col("refusjon").where(ref_ok, None), errors="coerce").to_numpy(dtype=float)
    normal = (kreditering == "0").to_numpy()
    reject("negative_amount", normal & ((egenandel < 0) | (refusjon < 0)))
    fritak = col("fritak_egenandel")
    reject("invalid_fritak_egenandel", ~fritak.isin(fmt.FRITAK_CODES).to_numpy())
    reject("egenandel_with_fritak", normal & (fritak.str.len() > 0).to_numpy() & (egenandel != 0) & egen_ok)

    # Takster and contacts.
    takster, tariff_sum, is_contact, kontakttype, takster_ok, unknown = _takster(col("takster"), tjeneste, known_service)
    reject("invalid_takster", present("takster") & ~takster_ok)
    reject("unknown_takst", unknown)
    warnings["amount_above_tariff"] = takster_ok & ~unknown & egen_ok & ref_ok & (
        np.abs(egenandel) + np.abs(refusjon) > 10 * tariff_sum)

    # Diagnoses.
    diagnoser = col("diagnoser")
    has_diag = (diagnoser.str.len() > 0).to_numpy()
    reject("missing_diagnosis", tjeneste.isin(fmt.DIAGNOSIS_REQUIRED).to_numpy() & ~has_diag)
    diag_ok = diagnoser.str.fullmatch(fmt.DIAGNOSES).fillna(False).to_numpy(dtype=bool)
    reject("invalid_diagnosis", has_diag & ~diag_ok)
    warnings["unknown_diagnosis"] = diag_ok & diagnoser.str.contains(
        rf"(?:^|\|)ICPC2:[{_NON_CHAPTER}]", regex=True).fillna(False).to_numpy(dtype=bool)
    diagnoses = _diagnoses(diagnoser, diag_ok)
    hoveddiagnose = np.full(n, None, dtype=object)
    main = diagnoses[diagnoses["position"] == 1]
    hoveddiagnose[main["row"].to_numpy()] = main["kode"].to_numpy()

    month = local.dt.tz_localize(None).dt.to_period("M").dt.start_time.to_numpy().astype("datetime64[D]")
    late_from = (local.dt.tz_localize(None).dt.to_period("M") + 7).dt.start_time.to_numpy().astype("datetime64[D]")
    typed = pd.DataFrame({
        "tidspunkt": parsed,
        "behandlingsmaaned": pd.Series(np.where(ts_ok, month, np.datetime64("NaT")), index=rows.index),
        "mottatt_dato": pd.Series(mottatt_day, index=rows.index),
        "late": ts_ok & mottatt_ok & (mottatt_day >= late_from),
        "kreditering": is_credit,
        "egenandel": egenandel,
        "refusjon": refusjon,
        "is_contact": is_contact,
        "kontakttype": kontakttype,
        "hoveddiagnose": hoveddiagnose,
        "fodselsaar": fodselsaar,
        "pasient_id_kind": ids.kind,
    }, index=rows.index)
    warnings = {k: np.asarray(v, dtype=bool) for k, v in warnings.items()}
    return CheckedRows(reasons=reasons, warnings=warnings, typed=typed, takster=takster, diagnoser=diagnoses)


def _split_items(values: pd.Series, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Explode ``a:b|c:d`` lists of the ``ok`` rows with Arrow: (row, position, left, right) per item."""
    rows = np.flatnonzero(ok)
    arr = pa.array(values.to_numpy(dtype=object)[rows], type=pa.string())
    lists = pc.split_pattern(arr, "|")
    flat = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists).to_numpy()
    pairs = pc.split_pattern(flat, ":", max_splits=1)
    left = pc.list_element(pairs, 0).to_numpy(zero_copy_only=False)
    right = pc.list_element(pairs, 1).to_numpy(zero_copy_only=False)
    row = rows[parent] if len(parent) else np.empty(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(parent)) + 1] if len(parent) else np.empty(0, dtype=np.int64)
    position = np.arange(len(parent)) - np.repeat(starts, np.diff(np.r_[starts, len(parent)])) + 1
    return row.astype(np.int64), position, left, right


def _takster(values: pd.Series, tjeneste: pd.Series, known_service: np.ndarray):
    n = len(values)
    ok = values.str.fullmatch(fmt.TAKSTER).fillna(False).to_numpy(dtype=bool)
    row, _, takst, antall = _split_items(values, ok)
    items = pd.DataFrame({"row": row, "takst": takst, "antall": antall.astype(np.int64)})
    items["tjeneste"] = tjeneste.to_numpy(dtype=object)[row]
    merged = items.merge(_tariff(), on=["tjeneste", "takst"], how="left")
    unknown_item = merged["typisk"].isna().to_numpy()
    unknown = np.zeros(n, dtype=bool)
    unknown[merged["row"].to_numpy()[unknown_item]] = True
    unknown &= known_service
    tariff_sum = np.zeros(n)
    np.add.at(tariff_sum, merged["row"].to_numpy(), (merged["typisk"].fillna(0) * merged["antall"]).to_numpy())
    contact_items = merged[merged["kontakt"].fillna(False).astype(bool)]
    is_contact = np.zeros(n, dtype=bool)
    is_contact[contact_items["row"].to_numpy()] = True
    kontakttype = np.full(n, None, dtype=object)
    if len(contact_items):
        best = contact_items.sort_values(["row", "rang"]).drop_duplicates("row")
        kontakttype[best["row"].to_numpy()] = best["kontakttype"].to_numpy()
    return items[["row", "takst", "antall"]], tariff_sum, is_contact, kontakttype, ok, unknown


def _diagnoses(values: pd.Series, ok: np.ndarray) -> pd.DataFrame:
    row, position, system, kode = _split_items(values, ok)
    return pd.DataFrame({"row": row, "position": position, "system": system, "kode": kode})
