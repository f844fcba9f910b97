"""The row rules of a KPR-KUHR delivery, as DuckDB SQL over the whole file.

A national day is hundreds of thousands of rows and a backfill tens of millions, so the rules run
inside DuckDB (vectorised, on every core) instead of row by row in Python. This module only writes
SQL text; ``kpr_pipeline/ingest/kuhr_check.py`` runs it. Each rule is one boolean expression named by
its reason code (``kpr_pipeline/domain/reasons.py``); ``RULES`` keeps the order in which a row's
reasons are listed. Cross-row semantics (resends, credits, suspected doubles) need the warehouse and
live in ``kpr_pipeline/ingest/kuhr.py``.

The SQL reads three relations: ``delivery_rows`` (one per data row: the text columns, the identifier's
outcome and its pid, never the identifier), ``takst_rows`` and ``diagnosis_rows`` (per row, from the
exploded ``takster`` and ``diagnoser`` lists), plus the reference tables ``ref_municipality``,
``ref_tariff`` and ``ref_praksistype``.
"""

from __future__ import annotations

from kpr_pipeline.domain import identifiers
from kpr_pipeline.domain.kuhr import format as fmt
from kpr_pipeline.domain.reasons import KUHR_ROW_REASONS, KUHR_WARNINGS

OSLO = "Europe/Oslo"
_NON_CHAPTER = "".join(sorted(set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") - fmt.ICPC2_CHAPTERS))
#: Python's ``\s`` in ``fmt.TAKST_ITEM`` is Unicode white space; RE2's is ASCII only, so it is spelled out.
_NOT_SPACE = r"[^:|\s\x{0B}\x{1C}-\x{1F}\x{85}\pZ]"
#: A count must fit a BIGINT (18 digits); a longer one makes the list invalid.
_TAKST_ITEM = _NOT_SPACE + r"+:[1-9][0-9]{0,17}"
TAKSTER_SQL = rf"{_TAKST_ITEM}(?:\|{_TAKST_ITEM})*"
IDENTIFIER_CODES = (identifiers.MALFORMED, identifiers.BAD_CHECK_DIGITS, identifiers.BAD_BIRTH_DATE,
                    identifiers.BORN_AFTER_EVENT, identifiers.TYPE_MISMATCH, identifiers.TEST_IDENTITY_IN_PRODUCTION)


def q(name: str) -> str:
    """A quoted SQL identifier (header names come from the file)."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def in_list(expr: str, values) -> str:
    return f"{expr} IN ({', '.join(lit(v) for v in sorted(values))})"


def rows_select(columns: list[str], source: str, production: bool, nul_bytes: bool) -> str:
    """The first pass over the file: text columns (empty for missing), the treatment time, and the identifier's
    outcome and pid; the identifier itself is not selected. ``nul_bytes``: the file may hold NUL bytes, which
    are replaced by U+FFFD and flag their row (a file without any skips that work)."""
    text = {c: f"coalesce({q(c)}, '')" for c in columns}
    for c in fmt.KNOWN_COLUMNS:
        text.setdefault(c, "''")
    kept = [c for c in text if c != "pasient_id"]
    if nul_bytes:
        has_nul = " OR ".join(f"contains({text[c]}, chr(0))" for c in text)
        text = {c: f"replace({v}, chr(0), '\ufffd')" for c, v in text.items()}
    else:
        has_nul = "FALSE"
    ts = f"CASE WHEN regexp_full_match({text['tidspunkt']}, {lit(fmt.ISO_DATETIME)}) " \
         f"THEN try_cast({text['tidspunkt']} AS TIMESTAMPTZ) END"
    typed = f"""SELECT {', '.join(f'{text[c]} AS {q(c)}' for c in kept)}, {text['pasient_id']} AS kpr_ident,
       {text['pasient_id_type']} AS kpr_declared, {has_nul} AS kpr_has_nul, {ts} AS kpr_ts FROM {source}"""
    with_event_day = f"SELECT *, CAST(timezone('{OSLO}', kpr_ts) AS DATE) AS kpr_event_day FROM ({typed})"
    return f"""
SELECT {', '.join(q(c) for c in kept)}, kpr_ts, kpr_has_nul, kpr_ident = '' AS kpr_id_missing,
       kpr_hmac(kpr_ident) AS kpr_pid, kpr_id_status, kpr_birth_year
FROM ({identifiers.sql_outcome(f"({with_event_day})", production)})"""


def takst_items_select() -> str:
    """One row per takst item of a well-formed list, with its tariff line (NULL when unknown)."""
    return f"""
SELECT i.row_number, i.takst, i.antall, r.tjeneste, t.kontakt, t.kontakttype, t.rang, t.typisk
FROM (SELECT row_number, split_part(item, ':', 1) AS takst, CAST(split_part(item, ':', 2) AS BIGINT) AS antall
      FROM (SELECT rowid + 1 AS row_number, unnest(string_split(takster, '|')) AS item FROM delivery_rows
            WHERE regexp_full_match(takster, {lit(TAKSTER_SQL)}))) i
JOIN (SELECT rowid + 1 AS row_number, tjeneste FROM delivery_rows) r USING (row_number)
LEFT JOIN ref_tariff t ON t.tjeneste = r.tjeneste AND t.takst = i.takst"""


TAKST_ROWS = """
SELECT row_number, bool_or(typisk IS NULL) AS unknown, sum(coalesce(typisk, 0) * antall) AS tariff_sum,
       bool_or(coalesce(kontakt, FALSE)) AS is_contact,
       arg_min(kontakttype, (rang, kontakttype)) FILTER (WHERE kontakt) AS kontakttype
FROM takst_items GROUP BY row_number"""


def diagnosis_items_select() -> str:
    """One row per diagnosis of a well-formed list: position (1 = main), system and code."""
    return f"""
SELECT row_number, position, split_part(item, ':', 1) AS system, split_part(item, ':', 2) AS kode
FROM (SELECT rowid + 1 AS row_number, unnest(string_split(diagnoser, '|')) AS item,
             generate_subscripts(string_split(diagnoser, '|'), 1) AS position
      FROM delivery_rows WHERE regexp_full_match(diagnoser, {lit(fmt.DIAGNOSES)}))"""


def _present(c: str) -> str:
    return f"({q(c)} <> '')"


def _fails(c: str, pattern: str) -> str:
    return f"({_present(c)} AND NOT regexp_full_match({q(c)}, {lit(pattern)}))"


#: (reason code, SQL condition) in the order a row's reasons are listed. The conditions read the
#: typed columns of ``checked_select``.
RULES: list[tuple[str, str]] = [
    ("nul_character", "kpr_has_nul"),
    ("missing_value", "(" + " OR ".join(f"{q(c)} = ''" for c in fmt.NON_EMPTY if c != "pasient_id")
     + " OR kpr_id_missing)"),
    ("invalid_regning_id", "length(regning_id) > 64"),
    ("invalid_regningsnummer", _fails("regningsnummer", "[0-9]{1,18}")),
    ("invalid_praksis_id", _fails("praksis_id", "[0-9]{10}")),
    ("invalid_behandler_hpr", _fails("behandler_hpr", "[0-9]{7,9}")),
    ("unknown_tjeneste", f"({_present('tjeneste')} AND NOT known_service)"),
    ("invalid_praksistype", f"({_present('praksistype')} AND NOT known_type)"),
    ("tjeneste_praksistype_mismatch", "(known_service AND known_type AND NOT allowed_type)"),
    ("invalid_kjonn", f"({_present('kjonn')} AND NOT {in_list('kjonn', ['1', '2', '9'])})"),
    ("invalid_tidspunkt", f"({_present('tidspunkt')} AND NOT ts_ok)"),
    ("tidspunkt_before_start", f"(ts_ok AND local_day < DATE '{fmt.KUHR_START.isoformat()}')"),
    ("invalid_mottatt_dato", f"({_present('mottatt_dato')} AND NOT mottatt_ok)"),
    ("tidspunkt_after_mottatt", "(ts_ok AND mottatt_ok AND local_day > mottatt_day)"),
    ("mottatt_after_delivery", "(mottatt_ok AND mottatt_day > delivery_date)"),
    *[(code, f"(NOT kpr_id_missing AND kpr_id_status = '{code}')") for code in IDENTIFIER_CODES],
    ("fodselsaar_mismatch", f"({_present('fodselsaar')} AND (fodselsaar_num IS NULL OR "
                            "(kpr_birth_year > 0 AND fodselsaar_num <> kpr_birth_year)))"),
    ("invalid_bostedskommune", f"(ts_ok AND {_present('bostedskommune')} AND NOT bosted_valid AND NOT bosted_retired)"),
    ("invalid_praksiskommune", f"(ts_ok AND {_present('praksiskommune')} AND NOT praksis_valid AND NOT praksis_retired)"),
    ("invalid_kreditering", f"({_present('kreditering')} AND NOT {in_list('kreditering', ['0', '1'])})"),
    ("missing_kreditert_regning_id", "(kreditering = '1' AND kreditert_regning_id = '')"),
    ("unexpected_kreditert_regning_id", "(kreditering = '0' AND kreditert_regning_id <> '')"),
    ("invalid_amount", f"(({_present('egenandel')} AND NOT egen_ok) OR ({_present('refusjon')} AND NOT ref_ok))"),
    ("negative_amount", "(kreditering = '0' AND (coalesce(egenandel_num < 0, FALSE) OR coalesce(refusjon_num < 0, FALSE)))"),
    ("invalid_fritak_egenandel", f"NOT {in_list('fritak_egenandel', fmt.FRITAK_CODES)}"),
    ("egenandel_with_fritak", "(kreditering = '0' AND fritak_egenandel <> '' AND egen_ok AND egenandel_num <> 0)"),
    ("invalid_takster", f"({_present('takster')} AND NOT takster_ok)"),
    ("unknown_takst", "(known_service AND coalesce(takst_unknown, FALSE))"),
    ("missing_diagnosis", f"({in_list('tjeneste', fmt.DIAGNOSIS_REQUIRED)} AND diagnoser = '')"),
    ("invalid_diagnosis", "(diagnoser <> '' AND NOT diag_ok)"),
]

#: Warnings (the row is loaded and the warning stored beside it), in their order.
WARNINGS: list[tuple[str, str]] = [
    ("retired_municipality", "(ts_ok AND bosted_retired AND NOT bosted_valid)"),
    ("amount_above_tariff", "(takster_ok AND NOT coalesce(takst_unknown, FALSE) AND egen_ok AND ref_ok AND "
                            "abs(egenandel_num) + abs(refusjon_num) > 10 * coalesce(tariff_sum, 0))"),
    ("unknown_diagnosis", f"(diag_ok AND regexp_matches(diagnoser, {lit(f'(?:^|[|])ICPC2:[{_NON_CHAPTER}]')}))"),
]


def _municipality(column: str, prefix: str) -> tuple[str, str]:
    valid = (f"({prefix}.code IS NOT NULL AND {prefix}.valid_from <= treatment_year "
             f"AND {prefix}.valid_to >= treatment_year)")
    retired = f"({prefix}.code IS NOT NULL AND {prefix}.valid_to = treatment_year - 1)"
    return valid, retired


def checked_select(delivery_date: str) -> str:
    """Per row: its number, every rule's outcome, the reasons and message, warnings, and the typed columns
    of a claim. ``delivery_date`` is an ISO date."""
    bosted_valid, bosted_retired = _municipality("bostedskommune", "b")
    praksis_valid, praksis_retired = _municipality("praksiskommune", "p")
    typed = f"""
SELECT r.rowid + 1 AS row_number, r.*, DATE '{delivery_date}' AS delivery_date,
       r.kpr_ts IS NOT NULL AS ts_ok, CAST(timezone('{OSLO}', r.kpr_ts) AS DATE) AS local_day,
       CASE WHEN r.kpr_ts IS NOT NULL THEN year(timezone('{OSLO}', r.kpr_ts)) ELSE -1 END AS treatment_year,
       CASE WHEN regexp_full_match(mottatt_dato, {lit(fmt.ISO_DATE)}) THEN try_cast(mottatt_dato AS DATE) END AS mottatt_day,
       regexp_full_match(egenandel, {lit(fmt.DECIMAL)}) AS egen_ok,
       regexp_full_match(refusjon, {lit(fmt.DECIMAL)}) AS ref_ok,
       regexp_full_match(takster, {lit(TAKSTER_SQL)}) AS takster_ok,
       regexp_full_match(diagnoser, {lit(fmt.DIAGNOSES)}) AS diag_ok,
       CASE WHEN regexp_full_match(fodselsaar, '[0-9]{{4}}') THEN CAST(fodselsaar AS INTEGER) END AS fodselsaar_num,
       {in_list('r.tjeneste', fmt.SERVICES)} AS known_service,
       {in_list('r.praksistype', fmt.ALL_PRAKSISTYPER)} AS known_type,
       a.tjeneste IS NOT NULL AS allowed_type,
       t.unknown AS takst_unknown, t.tariff_sum, coalesce(t.is_contact, FALSE) AS is_contact, t.kontakttype,
       d.kode AS hoveddiagnose
FROM delivery_rows r
LEFT JOIN ref_praksistype a ON a.tjeneste = r.tjeneste AND a.praksistype = r.praksistype
LEFT JOIN takst_rows t ON t.row_number = r.rowid + 1
LEFT JOIN diagnosis_rows d ON d.row_number = r.rowid + 1 AND d.position = 1"""
    reasons = ", ".join(f"CASE WHEN {cond} THEN '{code}' END" for code, cond in RULES)
    messages = ", ".join(f"CASE WHEN {cond} THEN {lit(KUHR_ROW_REASONS[code])} END" for code, cond in RULES)
    flags = ", ".join(f"coalesce({cond}, FALSE) AS {q('r_' + code)}" for code, cond in RULES)
    warnings = ", ".join(f"coalesce({cond}, FALSE) AS {q('w_' + code)}" for code, cond in WARNINGS)
    return f"""
SELECT row_number, {flags}, {warnings},
       concat_ws(',', {reasons}) AS reasons, concat_ws(' ', {messages}) AS message,
       CASE WHEN ts_ok THEN CAST(date_trunc('month', local_day) AS DATE) END AS behandlingsmaaned,
       coalesce(ts_ok AND mottatt_day IS NOT NULL
                AND mottatt_day >= date_trunc('month', local_day) + INTERVAL 7 MONTH, FALSE) AS late,
       mottatt_day, kpr_ts AS tidspunkt, fodselsaar_num AS fodselsaar, egenandel_num, refusjon_num, is_contact, kontakttype, hoveddiagnose
FROM (SELECT x.*, {bosted_valid} AS bosted_valid, {bosted_retired} AS bosted_retired,
             {praksis_valid} AS praksis_valid, {praksis_retired} AS praksis_retired,
             mottatt_day IS NOT NULL AS mottatt_ok,
             CASE WHEN egen_ok THEN CAST(egenandel AS DOUBLE) END AS egenandel_num,
             CASE WHEN ref_ok THEN CAST(refusjon AS DOUBLE) END AS refusjon_num
      FROM ({typed}) x
      LEFT JOIN ref_municipality b ON b.code = x.bostedskommune
      LEFT JOIN ref_municipality p ON p.code = x.praksiskommune)"""


def message_for(codes: list[str]) -> str:
    return " ".join(KUHR_ROW_REASONS.get(c) or KUHR_WARNINGS[c] for c in codes)
