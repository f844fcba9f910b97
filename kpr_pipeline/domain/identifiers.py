"""Fødselsnummer, D-numbers, H-numbers and test identities (spec/pseudonyms.md, Identifier forms).

The check is vectorised with NumPy because tens of millions of identifiers are checked a year.
Its agreement with ``stdnum.no.fodselsnummer`` is proven in the tests on every real-form case,
and for test identities against ``calc_check_digit1/2`` on the digits as written.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

W1 = np.array([3, 7, 6, 1, 8, 9, 4, 5, 2], dtype=np.int64)
W2 = np.array([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], dtype=np.int64)

FNR, DNR, HNR = "FNR", "DNR", "HNR"

# Outcome codes of one identifier, in the order they are tested. They are reason codes too.
OK = "ok"
MALFORMED = "malformed_pasient_id"  # not 11 ASCII digits
BAD_CHECK_DIGITS = "invalid_check_digits"
BAD_BIRTH_DATE = "invalid_birth_date"  # no real date by the century rules
BORN_AFTER_EVENT = "birth_after_event"  # birth date after the claim or report date
TYPE_MISMATCH = "pasient_id_type_mismatch"
TEST_IDENTITY_IN_PRODUCTION = "test_identity_in_production"

_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


@dataclass(frozen=True)
class IdentifierCheck:
    """Column-wise result of :func:`check_identifiers`; arrays align with the input."""

    status: np.ndarray  # object array of outcome codes (OK or a reason code)
    kind: np.ndarray  # FNR / DNR / HNR, or "" when malformed
    test_identity: np.ndarray  # bool
    birth_year: np.ndarray  # int, -1 when unknown
    birth_date: np.ndarray  # datetime64[D], NaT when unknown

    @property
    def valid(self) -> np.ndarray:
        return self.status == OK


def digits_matrix(ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(n × 11 digit matrix, mask of well-formed rows). Malformed rows are zero-filled."""
    s = pd.Series(ids, dtype="string").fillna("")
    well_formed = s.str.fullmatch(r"[0-9]{11}").fillna(False).to_numpy(dtype=bool)
    filled = s.where(well_formed, "00000000000")
    raw = np.frombuffer("".join(filled.tolist()).encode("ascii"), dtype=np.uint8)
    return raw.reshape(-1, 11).astype(np.int64) - 48, well_formed


def check_digits_ok(d: np.ndarray) -> np.ndarray:
    """Both mod-11 check digits right on the 11 digits as written (a computed 10 is invalid)."""
    k1 = (11 - (d[:, :9] @ W1) % 11) % 11
    k2 = (11 - (d[:, :10] @ W2) % 11) % 11
    return (k1 < 10) & (k1 == d[:, 9]) & (k2 < 10) & (k2 == d[:, 10])


def _century_year(yy: np.ndarray, individual: np.ndarray) -> np.ndarray:
    year = np.full(yy.shape, -1, dtype=np.int64)
    rules = [
        (individual <= 499, 1900),
        ((individual >= 500) & (individual <= 749) & (yy >= 54), 1800),
        ((individual >= 500) & (yy < 40), 2000),
        ((individual >= 900) & (yy >= 40), 1900),
    ]
    for mask, century in reversed(rules):  # first matching rule wins
        year = np.where(mask, yy + century, year)
    return year


def check_identifiers(
    ids: pd.Series | list[str],
    declared_types: pd.Series | list[str] | None = None,
    event_dates: pd.Series | np.ndarray | dt.date | None = None,
    production: bool = False,
) -> IdentifierCheck:
    """Classify and validate identifiers as spec/pseudonyms.md says, in its order.

    ``event_dates`` (claim or report dates) bound the birth date; ``declared_types`` are the
    ``pasient_id_type`` values to compare with the form.
    """
    d, well_formed = digits_matrix(pd.Series(ids))
    n = len(well_formed)
    dd = d[:, 0] * 10 + d[:, 1]
    mm = d[:, 2] * 10 + d[:, 3]
    yy = d[:, 4] * 10 + d[:, 5]
    individual = d[:, 6] * 100 + d[:, 7] * 10 + d[:, 8]

    test = mm > 80
    month = np.where(test, mm - 80, mm)
    hnr = ~test & (mm > 40)
    month = np.where(hnr, month - 40, month)
    dnr = dd > 40
    day = np.where(dnr, dd - 40, dd)
    kind = np.where(hnr, HNR, np.where(dnr, DNR, FNR)).astype(object)

    year = _century_year(yy, individual)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    dim = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    date_ok = (year > 0) & month_ok & (day >= 1) & (day <= dim)

    birth = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    if date_ok.any():
        idx = np.flatnonzero(date_ok)
        strings = np.char.add(
            np.char.add(np.char.zfill(year[idx].astype(str), 4), "-"),
            np.char.add(np.char.add(np.char.zfill(month[idx].astype(str), 2), "-"), np.char.zfill(day[idx].astype(str), 2)),
        )
        birth[idx] = strings.astype("datetime64[D]")

    status = np.full(n, OK, dtype=object)

    def mark(mask: np.ndarray, code: str) -> None:
        status[(status == OK) & mask] = code

    mark(~well_formed, MALFORMED)
    mark(~check_digits_ok(d), BAD_CHECK_DIGITS)
    mark(~date_ok, BAD_BIRTH_DATE)
    if event_dates is not None:
        ev = _as_day_array(event_dates, n)
        mark(~np.isnat(ev) & date_ok & (birth > ev), BORN_AFTER_EVENT)
    if declared_types is not None:
        declared = pd.Series(declared_types, dtype="string").fillna("").to_numpy(dtype=object)
        mark(declared != kind, TYPE_MISMATCH)
    if production:
        mark(test, TEST_IDENTITY_IN_PRODUCTION)

    kind = np.where(well_formed, kind, "")
    return IdentifierCheck(
        status=status,
        kind=kind,
        test_identity=test & well_formed,
        birth_year=np.where(date_ok & well_formed, year, -1),
        birth_date=birth,
    )


def _as_day_array(values, n: int) -> np.ndarray:
    if isinstance(values, dt.date):
        return np.full(n, np.datetime64(values, "D"))
    return pd.to_datetime(pd.Series(values), errors="coerce").to_numpy().astype("datetime64[D]")


def with_check_digits(first_nine: str) -> str | None:
    """The 11-digit identifier for 9 digits, or None when a check digit would be 10."""
    d = np.array([int(c) for c in first_nine], dtype=np.int64)
    k1 = (11 - int(d @ W1) % 11) % 11
    if k1 == 10:
        return None
    k2 = (11 - int(np.append(d, k1) @ W2) % 11) % 11
    if k2 == 10:
        return None
    return f"{first_nine}{k1}{k2}"


#: a run of exactly 11 digits: the shape of an identifier, in free text (leak detection, masking)
ELEVEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{11}(?![0-9])")


#: a hexadecimal token: a pid (64 hex), a digest, a UUID. About 4 % of random 64-hex pids hold a run of exactly
#: 11 digits and about 1 in 500 such runs passes the identifier check, so a leak detector that read inside them
#: would fail a rejected-row scan of a few thousand records by chance. ``\x`` or ``0x`` may lead (bytea, literals).
HEX_TOKEN = re.compile(r"(?<![0-9A-Za-z])(?:\\x|0x)?(?:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})"
                       r"(?![0-9A-Za-z])")


def identifiers_in_texts(texts) -> tuple[int, int]:
    """(11-digit strings, of which valid identifiers or test identities) in free texts, outside hexadecimal
    tokens (:data:`HEX_TOKEN`): a leak detector. A token made of hex digits only is no hiding place: an identifier
    in it is 11 digits run together with hex letters or digits, which nothing in the pipeline writes."""
    candidates = [m for text in texts for m in ELEVEN_DIGITS.findall(HEX_TOKEN.sub(" ", str(text)))]
    if not candidates:
        return 0, 0
    return len(candidates), int(np.sum(check_identifiers(pd.Series(candidates)).status == OK))


def sql_form_facts(source: str, production: bool) -> str:
    """The check of :func:`check_identifiers` in DuckDB SQL, all but the event-date rule: a query over
    ``source``, which has the columns ``kpr_ident`` (text) and ``kpr_declared`` (text), that adds
    ``kpr_form_status`` (the outcome without ``birth_after_event``) and ``kpr_birth`` (the birth date, or NULL
    when there is none). KPR-KUHR deliveries run it while DuckDB reads the file, one thread for a gzip file, so
    it is integer arithmetic on the 11 digits as one BIGINT; :func:`sql_outcome` completes it. Each layer
    computes its values once."""
    digits = ", ".join(f"(kpr_n // {10 ** (11 - i)}) % 10 AS kpr_d{i}" for i in range(1, 12))
    k1 = f"(11 - ({' + '.join(f'{w} * kpr_d{i + 1}' for i, w in enumerate(W1))}) % 11) % 11"
    k2 = f"(11 - ({' + '.join(f'{w} * kpr_d{i + 1}' for i, w in enumerate(W2))}) % 11) % 11"
    layer1 = f"""SELECT *, {digits} FROM (SELECT *, CASE WHEN regexp_full_match(kpr_ident, '[0-9]{{11}}')
       THEN CAST(kpr_ident AS BIGINT) END AS kpr_n FROM {source})"""
    layer2 = f"""SELECT *, {k1} AS kpr_k1, {k2} AS kpr_k2, kpr_n // 1000000000 AS kpr_dd, (kpr_n // 10000000) % 100 AS kpr_mm,
       (kpr_n // 100000) % 100 AS kpr_yy, (kpr_n // 100) % 1000 AS kpr_individual FROM ({layer1})"""
    layer3 = f"""SELECT *, kpr_mm > 80 AS kpr_test, NOT kpr_mm > 80 AND kpr_mm > 40 AS kpr_hnr, kpr_dd > 40 AS kpr_dnr,
       CASE WHEN kpr_individual <= 499 THEN 1900 + kpr_yy
            WHEN kpr_individual BETWEEN 500 AND 749 AND kpr_yy >= 54 THEN 1800 + kpr_yy
            WHEN kpr_individual >= 500 AND kpr_yy < 40 THEN 2000 + kpr_yy
            WHEN kpr_individual >= 900 AND kpr_yy >= 40 THEN 1900 + kpr_yy ELSE -1 END AS kpr_year FROM ({layer2})"""
    layer4 = f"""SELECT *, CASE WHEN kpr_hnr THEN '{HNR}' WHEN kpr_dnr THEN '{DNR}' ELSE '{FNR}' END AS kpr_kind,
       kpr_mm - CASE WHEN kpr_test THEN 80 WHEN kpr_hnr THEN 40 ELSE 0 END AS kpr_month,
       kpr_dd - CASE WHEN kpr_dnr THEN 40 ELSE 0 END AS kpr_day FROM ({layer3})"""
    leap = "(kpr_year % 4 = 0 AND kpr_year % 100 <> 0 OR kpr_year % 400 = 0)"
    days_in_month = f"CASE WHEN kpr_month = 2 THEN 28 + {leap}::INTEGER ELSE 31 - (kpr_month - 1) % 7 % 2 END"
    layer5 = f"""SELECT *, CASE WHEN kpr_year > 0 AND kpr_month BETWEEN 1 AND 12 AND kpr_day BETWEEN 1 AND {days_in_month}
       THEN make_date(kpr_year, kpr_month, kpr_day) END AS kpr_birth FROM ({layer4})"""
    status = (f"CASE WHEN kpr_n IS NULL THEN '{MALFORMED}' "
              f"WHEN NOT (kpr_k1 < 10 AND kpr_k1 = kpr_d10 AND kpr_k2 < 10 AND kpr_k2 = kpr_d11) THEN '{BAD_CHECK_DIGITS}' "
              f"WHEN kpr_birth IS NULL THEN '{BAD_BIRTH_DATE}' "
              f"WHEN coalesce(kpr_declared, '') <> kpr_kind THEN '{TYPE_MISMATCH}' "
              + (f"WHEN kpr_test THEN '{TEST_IDENTITY_IN_PRODUCTION}' " if production else "")
              + f"ELSE '{OK}' END")
    return f"SELECT *, {status} AS kpr_form_status FROM ({layer5})"


def sql_status(form_status: str, birth: str, event_day: str) -> str:
    """The outcome of the whole check from :func:`sql_form_facts`' columns and the event day (a DATE or NULL):
    ``birth_after_event`` ranks after the three rules on the form and before the declared type."""
    return (f"CASE WHEN {form_status} IN ('{MALFORMED}', '{BAD_CHECK_DIGITS}', '{BAD_BIRTH_DATE}') THEN {form_status} "
            f"WHEN {event_day} IS NOT NULL AND {birth} > {event_day} THEN '{BORN_AFTER_EVENT}' ELSE {form_status} END")


def sql_birth_year(birth: str) -> str:
    """The birth year of :func:`check_identifiers` (-1 when unknown) from the birth date of :func:`sql_form_facts`."""
    return f"coalesce(year({birth}), -1)"


def sql_outcome(source: str, production: bool) -> str:
    """The whole check of :func:`check_identifiers` in DuckDB SQL over ``source`` (``kpr_ident``, ``kpr_declared``
    and ``kpr_event_day``), adding ``kpr_id_status`` and ``kpr_birth_year``. The tests prove it equal to
    ``stdnum.no.fodselsnummer`` and to :func:`check_identifiers`; KPR-KUHR runs its two parts in two passes."""
    return (f"SELECT *, {sql_status('kpr_form_status', 'kpr_birth', 'kpr_event_day')} AS kpr_id_status, "
            f"{sql_birth_year('kpr_birth')} AS kpr_birth_year FROM ({sql_form_facts(source, production)})")
