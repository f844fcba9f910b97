"""The KPR-KUHR delivery format 1.0: columns, services and practice types, code shapes."""

from __future__ import annotations

import datetime as dt

KUHR_START = dt.date(2016, 7, 1)

#: Columns that must be in the header (a missing one quarantines the file). ``fritak_egenandel``
#: is optional; ``kreditert_regning_id`` and ``diagnoser`` are required where the rules say so,
#: so the column itself must be there.
REQUIRED_COLUMNS = (
    "regning_id", "regningsnummer", "praksis_id", "praksistype", "tjeneste", "behandler_hpr", "praksiskommune",
    "pasient_id", "pasient_id_type", "kjonn", "fodselsaar", "bostedskommune", "tidspunkt", "mottatt_dato",
    "kreditering", "kreditert_regning_id", "takster", "diagnoser", "egenandel", "refusjon",
)
OPTIONAL_COLUMNS = ("fritak_egenandel",)
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
#: Fields that may never be empty.
NON_EMPTY = tuple(c for c in REQUIRED_COLUMNS if c not in ("kreditert_regning_id", "diagnoser"))

PRAKSISTYPER = {
    "FASTLEGE": {"FALE", "FALO", "FATU", "KOFA"},
    "LEGEVAKT": {"LEVA", "LEKO", "KOLE"},
    "FYSIOTERAPI": {"FYNO", "FYKO", "KOFY", "FYMT", "FYPM"},
    "KIROPRAKTOR": {"KINO"},
    "TANNLEGE": {"TANN", "TAFY", "TAKJ"},
    "TANNPLEIER": {"TAPL", "TAPO"},
    "LOGOPED": {"LOGO"},
    "AUDIOPEDAGOG": {"AUDI"},
    "ORTOPTIST": {"ORTO"},
    "HELSESTASJON_JORDMOR": {"HELS", "KOHS", "JORD"},
}
SERVICES = frozenset(PRAKSISTYPER)
ALL_PRAKSISTYPER = frozenset().union(*PRAKSISTYPER.values())
DIAGNOSIS_REQUIRED = frozenset({"FASTLEGE", "LEGEVAKT"})
FRITAK_CODES = frozenset({"", "A", "B", "F", "G", "H", "K", "L", "M"})
ICPC2_CHAPTERS = frozenset("ABDFHKLNPRSTUWXYZ")

ICPC2_PATTERN = r"ICPC2:[A-Z][0-9]{2}(?:\.[A-Z0-9]{1,4})?"
ICD10_PATTERN = r"ICD10:[A-Z][0-9]{2}(?:\.[0-9]{1,2})?"
DIAGNOSIS_ITEM = rf"(?:{ICPC2_PATTERN}|{ICD10_PATTERN})"
DIAGNOSES = rf"{DIAGNOSIS_ITEM}(?:\|{DIAGNOSIS_ITEM})*"
TAKST_ITEM = r"[^:|\s]+:[1-9][0-9]*"
TAKSTER = rf"{TAKST_ITEM}(?:\|{TAKST_ITEM})*"
#: An amount; at most 12 digits before the point, so that it fits the warehouse's NUMERIC(14, 2).
DECIMAL = r"-?[0-9]{1,12}(?:\.[0-9]+)?"
ISO_DATETIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:[+-][0-9]{2}:[0-9]{2}|Z)"
ISO_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
