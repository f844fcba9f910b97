"""Reading one KPR-helse og omsorg report (format 1.0) as a stream, safely.

Untrusted XML: the prolog is scanned byte by byte first and any DOCTYPE refuses the file before a
parser sees it (parser settings alone do not refuse a DTD without entities). The document is then
parsed incrementally with lxml (no DTD loading, no entity resolution, no network) and validated
against the XSD batch by batch: each finished ``bruker`` is copied into a small document with the
header and validated there, and released from the streaming tree the way lxml allows during
incremental parsing (cleared, earlier siblings deleted; moving the element itself crashed lxml's
garbage collection once in CI), so memory is bounded by the batch, never the file.
lxml's own schema-validating pull parser is not used because it does not report a truncated
document (a well-formedness error after the last complete element).

Nothing here knows about the warehouse: ``read_report`` yields a ``ReportHeader`` and then
``PersonBatch`` objects of plain columns; the raw identifier leaves only in ``PersonBatch.ident``.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

from lxml import etree

from kpr_pipeline.domain.reference import XSD_PATH

NS = "urn:no:kpr:helse-omsorg:1"
Q = f"{{{NS}}}"
OSLO = ZoneInfo("Europe/Oslo")
FILE_NAME = re.compile(r"^kpr_ho_(\d{4})_(\d{4})_(\d{8}T\d{6})\.xml$")
ENCODINGS = {"utf-8", "utf8", "iso-8859-1", "latin-1", "latin1", "us-ascii"}
BATCH_PERSONS = 5_000
READ_BYTES = 1 << 16
MAX_PROLOG_BYTES = 1 << 20
FUNCTION_VARIABLES = (
    "SOSIAL_DELTAKELSE", "BESLUTNINGER_I_DAGLIGLIVET", "STYRE_ATFERD", "ALMINNELIG_HUSARBEID",
    "SKAFFE_VARER_OG_TJENESTER", "PERSONLIG_HYGIENE", "IVARETA_EGEN_HELSE", "KLE_AV_OG_PAA_SEG", "SPISE",
    "LAGE_MAT", "BEVEGE_SEG_INNENDORS", "BEVEGE_SEG_UTENDORS", "TOALETT", "HUKOMMELSE", "KOMMUNIKASJON",
    "SYN", "HORSEL",
)


class ReportFault(Exception):
    """The file cannot be trusted as a unit; ``code`` is the quarantine reason (spec whole-file rules)."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class FileName:
    reporting_year: int
    kommunenummer: str
    stamp: str  # YYYYMMDDTHHMMSS


def parse_file_name(name: str) -> FileName | None:
    m = FILE_NAME.match(name)
    return FileName(int(m.group(1)), m.group(2), m.group(3)) if m else None


def deadline(reporting_year: int) -> dt.datetime:
    """15 January of the following year, 23:59:59 Norwegian time."""
    return dt.datetime(reporting_year + 1, 1, 15, 23, 59, 59, tzinfo=OSLO)


@dataclass(frozen=True)
class ReportHeader:
    kommunenummer: str
    rapporteringsaar: int
    uttrekkstidspunkt: dt.datetime  # aware; a value without offset is read as Norwegian time
    stamp: str  # uttrekkstidspunkt in its own offset, as in the file name
    fagsystem: str
    antall_brukere: int

    @property
    def late(self) -> bool:
        return self.uttrekkstidspunkt > deadline(self.rapporteringsaar)


@dataclass
class PersonBatch:
    """Column lists for a run of ``bruker`` elements; ``person_index`` is 1-based in the file."""

    person_index: list[int] = field(default_factory=list)
    ident: list[str] = field(default_factory=list)
    id_type: list[str] = field(default_factory=list)
    kjonn: list[str] = field(default_factory=list)
    fodselsaar: list[int] = field(default_factory=list)
    bostedskommune: list[str] = field(default_factory=list)
    dodsdato: list[str | None] = field(default_factory=list)  # dates as ISO ``YYYY-MM-DD``
    # services: one entry per tjeneste
    s_person: list[int] = field(default_factory=list)
    s_index: list[int] = field(default_factory=list)
    s_kode: list[int] = field(default_factory=list)
    s_fra: list[str] = field(default_factory=list)
    s_til: list[str | None] = field(default_factory=list)
    s_timer: list[float | None] = field(default_factory=list)
    # function assessments: one entry per funksjonsvurdering
    a_person: list[int] = field(default_factory=list)
    a_dato: list[str] = field(default_factory=list)
    a_scores: list[dict[str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.person_index)


def check_prolog(path: Path) -> str:
    """Refuse a DOCTYPE or an encoding other than UTF-8/ISO-8859-1; return the declared encoding.

    Only the prolog (XML declaration, comments, processing instructions, white space) may come
    before the root element; it is read as bytes, which are the same in both allowed encodings.
    """
    with open(path, "rb") as f:
        head = f.read(MAX_PROLOG_BYTES)
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    if head[pos:pos + 2] in (b"\xff\xfe", b"\xfe\xff") or head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ReportFault("encoding_error", "UTF-16 is not allowed (UTF-8 or ISO-8859-1)")
    encoding = "utf-8"
    while True:
        while pos < len(head) and head[pos:pos + 1] in b" \t\r\n":
            pos += 1
        if head.startswith(b"<?xml ", pos) or head.startswith(b"<?xml\t", pos):
            end = head.find(b"?>", pos)
            if end < 0:
                raise ReportFault("xml_not_well_formed", "the XML declaration is not closed")
            m = re.search(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']", head[pos:end])
            if m:
                encoding = m.group(1).decode("ascii").lower()
                if encoding not in ENCODINGS:
                    raise ReportFault("encoding_error", f"encoding {m.group(1).decode('ascii')!r} is not allowed")
            pos = end + 2
        elif head.startswith(b"<!--", pos):
            end = head.find(b"-->", pos + 4)
            if end < 0:
                raise ReportFault("xml_not_well_formed", "a comment in the prolog is not closed")
            pos = end + 3
        elif head.startswith(b"<?", pos):
            end = head.find(b"?>", pos)
            if end < 0:
                raise ReportFault("xml_not_well_formed", "a processing instruction is not closed")
            pos = end + 2
        elif head.startswith(b"<!DOCTYPE", pos) or head.startswith(b"<!doctype", pos):
            raise ReportFault("xml_doctype", "the file has a DOCTYPE; DTDs and entities are refused")
        elif head.startswith(b"<", pos) and pos + 1 < len(head) and head[pos + 1:pos + 2] not in b"!?":
            return encoding
        elif pos >= len(head):
            raise ReportFault("xml_not_well_formed", "no root element")
        else:
            raise ReportFault("xml_not_well_formed", "unexpected content before the root element")


_SCHEMA: etree.XMLSchema | None = None


def schema() -> etree.XMLSchema:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = etree.XMLSchema(etree.parse(str(XSD_PATH), etree.XMLParser(resolve_entities=False, no_network=True)))
    return _SCHEMA


def _parser() -> etree.XMLPullParser:
    return etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False,
                               dtd_validation=False, huge_tree=False, remove_comments=True, remove_pis=True)


def read_report(path: Path, batch_persons: int = BATCH_PERSONS) -> Iterator[ReportHeader | PersonBatch]:
    """The header, then batches of persons; raises ``ReportFault`` for a file that must be quarantined.

    The caller must consume the whole iterator: the last checks (document complete, antallBrukere)
    run after the last batch.
    """
    check_prolog(path)
    parser = _parser()
    root = None
    header: ReportHeader | None = None
    holder = None  # the validation document: root copy + header + the batch's brukere
    pending: list = []  # (person index, bruker element)
    persons = 0
    depth = 0
    closed = False

    def flush() -> PersonBatch:
        nonlocal pending
        for _, b in pending:
            holder.append(b)
        _validate(holder, f"persons {pending[0][0]}-{pending[-1][0]}")
        batch = PersonBatch()
        for index, b in pending:
            _read_bruker(b, index, batch)
            holder.remove(b)
        pending = []
        return batch

    try:
        with open(path, "rb") as f:
            while True:
                data = f.read(READ_BYTES)
                if data:
                    parser.feed(data)
                else:
                    parser.close()
                for event, el in parser.read_events():
                    if event == "start":
                        depth += 1
                        if depth == 1:
                            root = el
                            if el.tag != f"{Q}kprHelseOmsorg":
                                raise ReportFault("xml_schema_invalid", f"root element is {_local(el.tag)}")
                        continue
                    depth -= 1
                    if depth == 0:
                        closed = True
                    elif depth == 1:
                        tag = el.tag
                        if tag == f"{Q}hode" and header is None and persons == 0:
                            holder = etree.Element(root.tag, dict(root.attrib), nsmap=root.nsmap)
                            holder.append(copy.deepcopy(el))
                            _validate(holder, "header")
                            header = _read_header(el)
                            yield header
                        elif tag == f"{Q}bruker" and header is not None:
                            persons += 1
                            pending.append((persons, copy.deepcopy(el)))
                            _release(el)
                            if len(pending) >= batch_persons:
                                yield flush()
                        else:
                            raise ReportFault("xml_schema_invalid",
                                              f"element {_local(tag) if isinstance(tag, str) else tag!r} not expected here")
                if not data:
                    break
    except etree.XMLSyntaxError as exc:
        raise ReportFault("xml_not_well_formed", _syntax_message(exc)) from None
    if not closed or root is None:
        raise ReportFault("xml_not_well_formed", "the document ends before its root element is closed")
    if header is None:
        holder = etree.Element(root.tag, dict(root.attrib), nsmap=root.nsmap)
        _validate(holder, "document")
    if pending:
        yield flush()
    if header.antall_brukere != persons:
        raise ReportFault("antall_brukere_mismatch", f"antallBrukere is {header.antall_brukere}, the file has {persons}")


def _release(el) -> None:
    """Free a finished element the way lxml allows during incremental parsing: clear it and delete its
    previous siblings (moving or deleting the element itself can crash lxml's garbage collection)."""
    el.clear()
    parent = el.getparent()
    while el.getprevious() is not None:
        del parent[0]


def _syntax_message(exc: etree.XMLSyntaxError) -> str:
    """The parser's message without echoing file content (it could hold an identifier)."""
    line = getattr(exc, "lineno", None) or (exc.position[0] if getattr(exc, "position", None) else None)
    kind = exc.msg.split(",")[0] if exc.msg else "syntax error"
    kind = re.sub(r"[0-9]{6,}", "<digits>", kind)[:120]
    return f"{kind} (line {line})" if line else kind


def _validate(holder, where: str) -> None:
    s = schema()
    if not s.validate(holder):
        error = s.error_log.last_error
        message = re.sub(r"'[0-9]{6,}'", "'<digits>'", error.message if error else "invalid")[:200]
        raise ReportFault("xml_schema_invalid", f"{where}: {message}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(text: str) -> str:
    """The ``YYYY-MM-DD`` of an xs:date (a time zone suffix is dropped; the XSD has checked the rest)."""
    text = text.strip()
    if not _ISO_DATE.match(text) or (len(text) > 10 and text[10] not in "Z+-"):
        raise ReportFault("xml_schema_invalid", "a date outside the years 0001-9999")
    return text[:10]


def _read_header(el) -> ReportHeader:
    values = {_local(c.tag): (c.text or "").strip() for c in el}
    raw = values["uttrekkstidspunkt"]
    when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    stamp = when.strftime("%Y%m%dT%H%M%S")
    if when.tzinfo is None:
        when = when.replace(tzinfo=OSLO)
    return ReportHeader(values["kommunenummer"], int(values["rapporteringsaar"][:4]), when, stamp,
                        values.get("fagsystem", ""), int(values["antallBrukere"]))


def _read_bruker(el, index: int, batch: PersonBatch) -> None:
    batch.person_index.append(index)
    death = None
    service = 0
    for child in el:
        tag = _local(child.tag)
        if tag == "personId":
            batch.ident.append((child.text or "").strip())
            batch.id_type.append(child.get("type"))
        elif tag == "kjonn":
            batch.kjonn.append(child.text.strip())
        elif tag == "fodselsaar":
            batch.fodselsaar.append(int(child.text.strip()[:4]))
        elif tag == "bostedskommune":
            batch.bostedskommune.append(child.text.strip())
        elif tag == "dodsdato":
            death = _date(child.text)
        elif tag == "funksjonsvurdering":
            batch.a_person.append(index)
            batch.a_dato.append(_date(child.get("dato")))
            batch.a_scores.append({v.get("navn"): int(v.get("skaar")) for v in child})
        elif tag == "tjeneste":
            service += 1
            values = {_local(c.tag): (c.text or "").strip() for c in child}
            batch.s_person.append(index)
            batch.s_index.append(service)
            batch.s_kode.append(int(values["tjenestekode"]))
            batch.s_fra.append(_date(values["fraDato"]))
            batch.s_til.append(_date(values["tilDato"]) if "tilDato" in values else None)
            batch.s_timer.append(float(values["timerPerUke"]) if "timerPerUke" in values else None)
    batch.dodsdato.append(death)
