"""Injected faults (``--defects RATE``) and the ground truth that lists each of them.

Every row fault is built to break exactly one rule, so its expected reason code is known; each
file fault kind is injected at least once when the rate is above zero, then at the rate. Rows
that other events depend on (credited, resent, doubled) are never damaged, so a fault never
changes the meaning of another row.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.landing import Manifest
from kpr_pipeline.synth.output import GroundTruth
from kpr_pipeline.synth.rng import stream

GP_LIKE = ("FASTLEGE", "LEGEVAKT")

RowFix = Callable[[pd.Series, dict], pd.Series | None]


def _set(**values) -> RowFix:
    def fix(row: pd.Series, ctx: dict) -> pd.Series:
        for k, v in values.items():
            row[k] = v(row, ctx) if callable(v) else v
        return row
    return fix


def _when(predicate: Callable[[pd.Series, dict], bool], fix: RowFix) -> RowFix:
    return lambda row, ctx: fix(row, ctx) if predicate(row, ctx) else None


def _flip_last_digit(row, ctx):
    pid = row["pasient_id"]
    return pid[:10] + str((int(pid[10]) + 1) % 10)


def _shift_date(row, ctx, days):
    day = dt.date.fromisoformat(row["mottatt_dato"]) + dt.timedelta(days=days)
    return day.isoformat() + row["tidspunkt"][10:]


def _retired_code(row, ctx):
    year = int(row["tidspunkt"][:4])
    m = reference.municipalities()
    codes = m.loc[m.valid_to == year - 1, "code"]
    return codes.iloc[0] if len(codes) else None


def _credit_of_unknown(row, ctx):
    row["kreditering"] = "1"
    row["kreditert_regning_id"] = ctx["new_guid"]
    row["egenandel"] = "-" + row["egenandel"] if float(row["egenandel"]) else row["egenandel"]
    row["refusjon"] = "-" + row["refusjon"]
    return row


#: name -> (expected outcome, reason code, how to break the row)
KUHR_ROW_DEFECTS: dict[str, tuple[str, str, RowFix]] = {
    "bad_check_digits": ("reject", "invalid_check_digits", _set(pasient_id=_flip_last_digit)),
    "malformed_pasient_id": ("reject", "malformed_pasient_id", _set(pasient_id=lambda r, c: r["pasient_id"][:10])),
    "id_type_mismatch": ("reject", "pasient_id_type_mismatch", _set(pasient_id_type="HNR")),
    "fodselsaar_mismatch": ("reject", "fodselsaar_mismatch", _set(fodselsaar=lambda r, c: str(int(r["fodselsaar"]) + 1))),
    "invalid_bostedskommune": ("reject", "invalid_bostedskommune", _set(bostedskommune="0000")),
    "tjeneste_praksistype_mismatch": ("reject", "tjeneste_praksistype_mismatch",
                                      _set(praksistype=lambda r, c: "FALE" if r["tjeneste"] == "KIROPRAKTOR" else "KINO")),
    "unknown_tjeneste": ("reject", "unknown_tjeneste", _set(tjeneste="TANNTEKNIKER")),
    "unknown_takst": ("reject", "unknown_takst", _set(takster="ZZ99:1")),
    "invalid_takster": ("reject", "invalid_takster", _set(takster=lambda r, c: r["takster"].split(":")[0] + ":0")),
    "negative_amount": ("reject", "negative_amount", _set(refusjon=lambda r, c: "-" + r["refusjon"])),
    "tidspunkt_before_start": ("reject", "tidspunkt_before_start", _set(tidspunkt="2016-06-15T10:00:00+02:00")),
    "tidspunkt_after_mottatt": ("reject", "tidspunkt_after_mottatt", _set(tidspunkt=lambda r, c: _shift_date(r, c, 2))),
    "impossible_tidspunkt": ("reject", "invalid_tidspunkt",
                             _set(tidspunkt=lambda r, c: r["tidspunkt"][:4] + "-02-30T10:00:00+01:00")),
    "mottatt_after_delivery": ("reject", "mottatt_after_delivery",
                               _set(mottatt_dato=lambda r, c: (c["delivery_date"] + dt.timedelta(days=3)).isoformat())),
    "invalid_kjonn": ("reject", "invalid_kjonn", _set(kjonn="3")),
    "egenandel_with_fritak": ("reject", "egenandel_with_fritak", _set(fritak_egenandel="F", egenandel="150.00")),
    "missing_praksis_id": ("reject", "missing_value", _set(praksis_id="")),
    "invalid_diagnosis": ("reject", "invalid_diagnosis",
                          _when(lambda r, c: r["tjeneste"] in GP_LIKE, _set(diagnoser="ICPC2:R7"))),
    "missing_diagnosis": ("reject", "missing_diagnosis",
                          _when(lambda r, c: r["tjeneste"] in GP_LIKE, _set(diagnoser=""))),
    "orphan_credit": ("reject", "orphan_credit", _credit_of_unknown),
    "retired_municipality": ("warning", "retired_municipality",
                             _when(lambda r, c: _retired_code(r, c) is not None, _set(bostedskommune=_retired_code))),
    "unknown_diagnosis": ("warning", "unknown_diagnosis",
                          _when(lambda r, c: r["tjeneste"] in GP_LIKE, _set(diagnoser="ICPC2:E12"))),
    "amount_above_tariff": ("warning", "amount_above_tariff", _set(refusjon="50000.00")),
}

#: File faults: name -> (expected outcome, reason code).
KUHR_FILE_DEFECTS = {
    "checksum_mismatch": ("quarantine", "checksum_mismatch"),
    "row_count_mismatch": ("quarantine", "row_count_mismatch"),
    "truncated_gzip": ("quarantine", "compression_error"),
    "missing_required_column": ("quarantine", "missing_required_column"),
    "manifest_unreadable": ("quarantine", "manifest_unreadable"),
    "manifest_unknown_version": ("quarantine", "manifest_unknown_format"),
    "data_file_outside": ("quarantine", "data_file_not_plain"),
    "manifest_missing": ("not_ready", "not_ready"),
}


class KuhrDefects:
    def __init__(self, rate: float, truth: GroundTruth):
        self.rate = rate
        self.truth = truth
        self.file_kinds_left = list(KUHR_FILE_DEFECTS)
        self.planned: dict[str, str] = {}
        self.credit_notes: list[pd.Series] = []
        self.duplicate_credit_done = 0

    def plan(self, delivery_id: str) -> str | None:
        """Decide whether ``delivery_id`` is damaged as a whole (before its rows are made)."""
        if self.rate <= 0:
            return None
        rng = stream(0, "kuhr-file-defect", delivery_id)
        if self.file_kinds_left and rng.random() < 0.2:
            kind = self.file_kinds_left.pop(0)
        elif rng.random() < self.rate:
            kind = list(KUHR_FILE_DEFECTS)[int(rng.integers(0, len(KUHR_FILE_DEFECTS)))]
        else:
            return None
        self.planned[delivery_id] = kind
        return kind

    def rows(self, delivery_id: str, day: dt.date, rows: pd.DataFrame, protected: set[str]) -> pd.DataFrame:
        """Damage rows at the rate (unless the file as a whole will be damaged) and log each fault."""
        if delivery_id in self.planned:  # the file is lost as a whole: none of its notes counts as delivered
            return rows
        if self.rate <= 0 or rows.empty:
            self._remember_notes(rows[rows["kreditering"] == "1"])
            return rows
        rng = stream(0, "kuhr-row-defects", delivery_id)
        names = list(KUHR_ROW_DEFECTS)
        hit = np.flatnonzero(rng.random(len(rows)) < self.rate)
        rows = rows.copy()
        for i in hit:
            row = rows.iloc[i].copy()
            if row["regning_id"] in protected or row["kreditering"] == "1":
                continue
            if self.credit_notes and self.duplicate_credit_done < 3 and rng.random() < 0.1:
                dup = self.credit_notes.pop(0).copy()
                dup["regning_id"] = row["regning_id"]
                rows.iloc[i] = dup
                self.duplicate_credit_done += 1
                self._log_row(delivery_id, i, dup, "duplicate_credit", "reject", "duplicate_credit")
                continue
            name = names[int(rng.integers(0, len(names)))]
            outcome, reason, fix = KUHR_ROW_DEFECTS[name]
            ctx = {"delivery_date": day, "new_guid": f"00000000-0000-4000-a000-{int(rng.integers(0, 10**12)):012d}"}
            broken = fix(row.copy(), ctx)
            if broken is None:
                continue
            rows.iloc[i] = broken
            self._log_row(delivery_id, i, broken, name, outcome, reason)
        self._remember_notes(rows[rows["kreditering"] == "1"])
        return rows

    def _remember_notes(self, notes: pd.DataFrame) -> None:
        for _, note in notes.iterrows():
            if len(self.credit_notes) < 20 and note["kreditert_regning_id"] and not note["kreditert_regning_id"].startswith("00000000-"):
                self.credit_notes.append(note)

    def _log_row(self, delivery_id, i, row, name, outcome, reason):
        self.truth.add(dataset="kuhr", level="row", file=f"kuhr/{delivery_id}.csv.gz", delivery_id=delivery_id,
                       row_number=int(i) + 1, regning_id=row["regning_id"], defect=name, expected=outcome, reason=reason)

    def columns(self, delivery_id: str, rows: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
        columns = list(rows.columns)
        if self.planned.get(delivery_id) == "missing_required_column":
            columns.remove("tjeneste")
        return columns, rows

    def file(self, delivery_id: str, data_path: Path, manifest: Manifest, directory: Path) -> None:
        """Write the manifest, damaged as planned, and log the file fault."""
        kind = self.planned.get(delivery_id)
        manifest_path = directory / f"{delivery_id}.manifest.json"
        text = manifest.to_json()
        data = json.loads(text)
        if kind == "checksum_mismatch":
            data["sha256"] = "0" * 64
        elif kind == "row_count_mismatch":
            data["row_count"] += 1
        elif kind == "truncated_gzip":
            payload = data_path.read_bytes()
            data_path.write_bytes(payload[: max(20, len(payload) - 40)])
            from kpr_pipeline.domain.landing import sha256_file

            data["sha256"] = sha256_file(data_path)
        elif kind == "manifest_unknown_version":
            data["format_version"] = "2.0"
        elif kind == "data_file_outside":
            data["data_file"] = "../" + data["data_file"]
        text = json.dumps(data, indent=2) + "\n"
        if kind == "manifest_unreadable":
            text = '{"format": "kpr-kuhr-delivery", "delivery_id": '
        if kind != "manifest_missing":
            manifest_path.write_text(text, encoding="utf-8")
        if kind:
            outcome, reason = KUHR_FILE_DEFECTS[kind]
            self.truth.add(dataset="kuhr", level="file", file=f"kuhr/{data_path.name}", delivery_id=delivery_id,
                           defect=kind, expected=outcome, reason=reason)

    def finish(self) -> None:
        self.truth.flush()
