"""The row rules of a KPR-KUHR delivery, as DuckDB SQL over the whole file.

A national day is hundreds of thousands of rows and a backfill tens of millions, so the rules run
inside DuckDB (vectorised, on every core) instead of row by row in Python. This module only writes
SQL text; ``kpr_pipeline/ingest/kuhr_check.py`` runs it. Each rule is one boolean expression named by
its reason code (``kpr_pipeline/domain/reasons.py``); ``RULES`` keeps the order in which a row's
reasons are listed. Cross-row semantics (duplicates, resends, credits, suspected doubles) live in
``kuhr_check.py`` and ``kpr_pipeline/ingest/kuhr.py``.

``rows_select`` (the reading pass) has no join, so that ``delivery_rows`` keeps the file's order (a
row's ``rowid`` + 1 is its number); ``checked_select`` (the rules) carries that number along.
Reference data comes in as the table ``kpr_municipality`` (code to its validity years, joined per row) and
the variable ``kpr_tariff``, a map of ``tjeneste|takst`` to the tariff line (looked up per distinct takster
list, ``TAKST_FACTS``); the identifier's pid comes from the macros ``kpr_hmac_inner`` (reading pass) and
``kpr_hmac_outer`` (rules pass).
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
    """Membership in a constant list. The checking DuckDB runs without the optimizer that plans a long ``IN``
    list as a join (``DeliveryCheck``): a join may reorder rows, while ``checked`` must keep the file's order."""
    return f"{expr} IN ({', '.join(lit(v) for v in sorted(values))})"


def stored_name(column: str, columns: list[str]) -> str:
    """The name a header column has in the checking tables: its own for the format's columns; ``kpr_extra_<i>``
    for a column the format does not know (so that no header can collide with a name the rules use)."""
    return column if column in fmt.KNOWN_COLUMNS else f"kpr_extra_{columns.index(column)}"


def _text_columns(columns: list[str], nul_bytes: bool) -> tuple[dict[str, str], str]:
    """(stored name -> SQL text of the column, empty for missing; the NUL flag). With ``nul_bytes``, NUL bytes
    are replaced by U+FFFD and flag their row; a file without any skips that work."""
    text = {stored_name(c, columns): f"coalesce({q(c)}, '')" for c in columns}
    for c in fmt.KNOWN_COLUMNS:
        text.setdefault(c, "''")
    if not nul_bytes:
        return text, "FALSE"
    has_nul = " OR ".join(f"contains({v}, chr(0))" for v in text.values())
    return {c: f"replace({v}, chr(0), '\ufffd')" for c, v in text.items()}, has_nul


_ALLOWED_PAIRS = sorted(f"{s}|{p}" for s, types in fmt.PRAKSISTYPER.items() for p in types)


def rows_select(columns: list[str], source: str, production: bool, nul_bytes: bool) -> str:
    """The reading pass over ``source`` (whose columns are the file's header ``columns``, as text): the text
    columns and what only the identifier can tell (``identifiers.sql_form_facts`` and the HMAC's keyed inner
    hash, macro ``kpr_hmac_inner``). The identifier itself is not selected, so the table this fills
    (``delivery_rows``) never holds one. Reading a gzip file is one thread's work, so this pass does nothing
    else; ``checked_select`` does the rest (the pid's outer hash, the event-date rule) on every core."""
    text, has_nul = _text_columns(columns, nul_bytes)
    kept = [c for c in text if c != "pasient_id"]
    base = f"""SELECT {', '.join(f'{text[c]} AS {q(c)}' for c in kept)}, {text['pasient_id']} AS kpr_ident,
       {text['pasient_id_type']} AS kpr_declared, {has_nul} AS kpr_has_nul FROM {source}"""
    return f"""
SELECT {', '.join(q(c) for c in kept)}, kpr_has_nul, kpr_ident = '' AS kpr_id_missing,
       kpr_hmac_inner(kpr_ident) AS kpr_inner, kpr_form_status, kpr_birth
FROM ({identifiers.sql_form_facts(f"({base})", production)})"""


#: One row per distinct pair of ``tjeneste`` and valid ``takster`` list in ``delivery_rows``, with what the
#: tariff says of the list: an unknown takst, the typical amount, whether it is a contact and of which type
#: (the contact takst of the lowest rank). A delivery repeats few lists (two million generated claims hold a
#: few hundred), so the tariff is looked up once per list, not once per row.
TAKST_FACTS = f"""
SELECT tjeneste, takster,
       list_bool_or(list_transform(kpr_items, lambda v: v.t IS NULL)) AS takst_unknown,
       list_sum(list_transform(kpr_items, lambda v: coalesce(v.t.typisk, 0) * v.antall)) AS tariff_sum,
       coalesce(list_bool_or(list_transform(kpr_items, lambda v: coalesce(v.t.kontakt, FALSE))), FALSE) AS is_contact,
       list_sort(list_transform(list_filter(kpr_items, lambda v: coalesce(v.t.kontakt, FALSE)),
                                lambda v: {{'rang': v.t.rang, 'kontakttype': v.t.kontakttype}}))[1].kontakttype AS kontakttype
FROM (SELECT *, list_transform(string_split(takster, '|'), lambda i: {{
                    'antall': CAST(split_part(i, ':', 2) AS BIGINT),
                    't': getvariable('kpr_tariff')[tjeneste || '|' || split_part(i, ':', 1)]}}) AS kpr_items
      FROM (SELECT DISTINCT tjeneste, takster FROM delivery_rows WHERE regexp_full_match(takster, {lit(TAKSTER_SQL)})))"""


def checked_select(columns: list[str], delivery_date: str) -> str:
    """One row per row of ``delivery_rows``: its ``row_number`` (taken from the rowid, so the result's own order
    does not matter and DuckDB may write it on every core), the text columns (the identifier replaced by
    ``kpr_pid``), the typed columns of a claim, and the rules' outcomes as bits (``reason_bits``: bit i for
    ``RULES[i]``, zero for a row that passes; ``warning_bits`` likewise). ``delivery_date`` is an ISO date."""
    kept = [c for c in _text_columns(columns, False)[0] if c != "pasient_id"]
    ts = f"CASE WHEN regexp_full_match(tidspunkt, {lit(fmt.ISO_DATETIME)}) THEN try_cast(tidspunkt AS TIMESTAMPTZ) END"
    typed = f"""
SELECT *, kpr_event_day AS local_day, kpr_ts IS NOT NULL AS ts_ok,
       {identifiers.sql_status('kpr_form_status', 'kpr_birth', 'kpr_event_day')} AS kpr_id_status,
       {identifiers.sql_birth_year('kpr_birth')} AS kpr_birth_year,
       CASE WHEN kpr_ts IS NOT NULL THEN year(kpr_event_day) ELSE -1 END AS treatment_year,
       CASE WHEN regexp_full_match(mottatt_dato, {lit(fmt.ISO_DATE)}) THEN try_cast(mottatt_dato AS DATE) END AS mottatt_day,
       regexp_full_match(egenandel, {lit(fmt.DECIMAL)}) AS egen_ok,
       regexp_full_match(refusjon, {lit(fmt.DECIMAL)}) AS ref_ok,
       regexp_full_match(takster, {lit(TAKSTER_SQL)}) AS takster_ok,
       regexp_full_match(diagnoser, {lit(fmt.DIAGNOSES)}) AS diag_ok,
       CASE WHEN regexp_full_match(fodselsaar, '[0-9]{{4}}') THEN CAST(fodselsaar AS INTEGER) END AS fodselsaar_num,
       {in_list('tjeneste', fmt.SERVICES)} AS known_service,
       {in_list('praksistype', fmt.ALL_PRAKSISTYPER)} AS known_type,
       {in_list("tjeneste || '|' || praksistype", _ALLOWED_PAIRS)} AS allowed_type,
       (SELECT m.validity FROM kpr_municipality m WHERE m.code = bostedskommune) AS kpr_bosted,
       (SELECT m.validity FROM kpr_municipality m WHERE m.code = praksiskommune) AS kpr_praksis
FROM (SELECT *, CAST(timezone('{OSLO}', kpr_ts) AS DATE) AS kpr_event_day
      FROM (SELECT *, rowid + 1 AS row_number, {ts} AS kpr_ts, kpr_hmac_outer(kpr_inner) AS kpr_pid
            FROM delivery_rows))"""
    derived = f"""
SELECT *, mottatt_day IS NOT NULL AS mottatt_ok,
       CASE WHEN egen_ok THEN CAST(egenandel AS DOUBLE) END AS egenandel_num,
       CASE WHEN ref_ok THEN CAST(refusjon AS DOUBLE) END AS refusjon_num,
       CASE WHEN diag_ok THEN split_part(split_part(diagnoser, '|', 1), ':', 2) END AS hoveddiagnose,
       {_valid('kpr_bosted')} AS bosted_valid, {_retired('kpr_bosted')} AS bosted_retired,
       {_valid('kpr_praksis')} AS praksis_valid, {_retired('kpr_praksis')} AS praksis_retired
FROM (SELECT r.*, DATE '{delivery_date}' AS delivery_date, f.takst_unknown, f.tariff_sum,
             coalesce(f.is_contact, FALSE) AS is_contact, f.kontakttype
      FROM ({typed}) r LEFT JOIN kpr_takst_facts f ON f.tjeneste = r.tjeneste AND f.takster = r.takster)"""
    reasons = " | ".join(f"(coalesce({cond}, FALSE)::BIGINT << {i})" for i, (_, cond) in enumerate(RULES))
    warnings = " | ".join(f"(coalesce({cond}, FALSE)::INTEGER << {i})" for i, (_, cond) in enumerate(WARNINGS))
    return f"""
WITH kpr_takst_facts AS ({TAKST_FACTS})
SELECT row_number, {', '.join(q(c) for c in kept)}, kpr_pid, kpr_ts, mottatt_day, fodselsaar_num, egenandel_num, refusjon_num,
       is_contact, kontakttype, hoveddiagnose,
       CASE WHEN ts_ok THEN CAST(date_trunc('month', local_day) AS DATE) END AS behandlingsmaaned,
       coalesce(ts_ok AND mottatt_ok
                AND mottatt_day >= date_trunc('month', local_day) + INTERVAL 7 MONTH, FALSE) AS late,
       {reasons} AS reason_bits, {warnings} AS warning_bits
FROM ({derived})"""


def has_reason(code: str) -> str:
    """The condition on a row of ``checked`` that it was rejected for ``code``."""
    return f"(reason_bits >> {[c for c, _ in RULES].index(code)}) & 1 = 1"


def has_warning(code: str) -> str:
    return f"(warning_bits >> {[c for c, _ in WARNINGS].index(code)}) & 1 = 1"


def _valid(municipality: str) -> str:
    return (f"coalesce({municipality}.valid_from <= treatment_year AND {municipality}.valid_to >= treatment_year, "
            "FALSE)")


def _retired(municipality: str) -> str:
    return f"coalesce({municipality}.valid_to = treatment_year - 1, FALSE)"


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


#: Rows of ``checked`` that pass the rules but repeat a regning_id of an earlier such row (a duplicate within
#: the file). Only regning_ids that occur twice are ranked, so a file without repeats costs one GROUP BY.
REPEATS = """
SELECT row_number FROM (
    SELECT row_number, row_number() OVER (PARTITION BY regning_id ORDER BY row_number) AS k FROM checked
    WHERE reason_bits = 0 AND regning_id IN (SELECT regning_id FROM checked WHERE reason_bits = 0
                                          GROUP BY regning_id HAVING count(*) > 1))
WHERE k > 1"""


def reasons_sql() -> str:
    """The reason codes of a row of ``checked``, comma-separated in the order of ``RULES``."""
    return "concat_ws(',', " + ", ".join(f"CASE WHEN {has_reason(code)} THEN '{code}' END" for code, _ in RULES) + ")"


def message_sql() -> str:
    """The reasons' sentences of a row of ``checked``."""
    return "concat_ws(' ', " + ", ".join(f"CASE WHEN {has_reason(code)} THEN {lit(KUHR_ROW_REASONS[code])} END"
                                         for code, _ in RULES) + ")"


def message_for(codes: list[str]) -> str:
    return " ".join(KUHR_ROW_REASONS.get(c) or KUHR_WARNINGS[c] for c in codes)
