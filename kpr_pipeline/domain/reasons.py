"""The catalogue of machine-readable reason codes, one sentence each.

One list for the whole registry: the pipeline writes these codes into ``*_rejected_rows``,
``*_warnings`` and ``quarantine_events``; the synthetic generator's ground truth names them; the
quality report groups by them. A code leads to the rule that applies it.
"""

from __future__ import annotations

# --- whole files (quarantine) -------------------------------------------------------------
FILE_REASONS = {
    "manifest_unreadable": "The manifest is not readable JSON.",
    "manifest_unknown_format": "The manifest names an unknown format or format version.",
    "manifest_invalid": "The manifest lacks a field or has a wrong value.",
    "data_file_not_plain": "The manifest's data_file is not a plain file name in the same directory.",
    "data_file_missing": "The data file named by the manifest does not exist.",
    "checksum_mismatch": "The data file's SHA-256 differs from the manifest.",
    "row_count_mismatch": "The number of data rows differs from the manifest's row_count.",
    "compression_error": "The data file's compression is undecodable or truncated.",
    "encoding_error": "The data file is not valid UTF-8.",
    "missing_required_column": "A required column is missing from the header.",
    "xml_not_well_formed": "The XML is not well-formed.",
    "xml_doctype": "The XML has a DOCTYPE (DTD or entity declarations), which is refused.",
    "xml_schema_invalid": "The XML is not valid against kpr-helse-omsorg-1.0.xsd.",
    "header_file_name_mismatch": "The report header contradicts its file name.",
    "municipality_not_valid_in_year": "The reporting municipality is not valid in the reporting year.",
    "antall_brukere_mismatch": "antallBrukere differs from the number of bruker elements.",
    "file_too_large": "The data file expands beyond the size limit.",
    "csv_malformed": "The CSV cannot be parsed (a row with the wrong number of fields or broken quoting).",
    "file_name_invalid": "The report's file name is not kpr_ho_<year>_<kommunenummer>_<YYYYMMDDTHHMMSS>.xml in its year folder.",
    "not_a_regular_file": "The landing file is a symbolic link or not a regular file; it is not read.",
    "reporting_year_out_of_range": "The report is not in a year folder from 2017 to the last year that has ended.",
}

_NUL_CHARACTER = "A field holds a NUL byte (binary data in a text file); stored with U+FFFD in its place."

# --- KPR-KUHR rows ----------------------------------------------------------------------
KUHR_ROW_REASONS = {
    "nul_character": _NUL_CHARACTER,
    "missing_value": "A required field is empty.",
    "invalid_regning_id": "regning_id is not 1-64 characters.",
    "invalid_regningsnummer": "regningsnummer is not an integer.",
    "invalid_praksis_id": "praksis_id is not 10 digits.",
    "invalid_praksistype": "praksistype is not a known practice type.",
    "unknown_tjeneste": "tjeneste is not one of the ten services.",
    "tjeneste_praksistype_mismatch": "praksistype is not allowed for the tjeneste.",
    "invalid_behandler_hpr": "behandler_hpr is not 7-9 digits.",
    "invalid_praksiskommune": "praksiskommune is not a municipality code valid on the treatment date.",
    "malformed_pasient_id": "pasient_id is not 11 digits.",
    "invalid_check_digits": "pasient_id fails its mod-11 check digits.",
    "invalid_birth_date": "pasient_id does not hold a real birth date.",
    "birth_after_event": "The birth date in pasient_id is after the treatment date.",
    "pasient_id_type_mismatch": "pasient_id_type does not match the form of pasient_id.",
    "test_identity_in_production": "pasient_id is a test identity, refused in production.",
    "invalid_kjonn": "kjonn is not 1, 2 or 9.",
    "fodselsaar_mismatch": "fodselsaar disagrees with the birth date in pasient_id.",
    "invalid_bostedskommune": "bostedskommune is not a code valid on the treatment date (nor 9999).",
    "invalid_tidspunkt": "tidspunkt is not an ISO 8601 date-time with offset.",
    "tidspunkt_before_start": "tidspunkt is before 2016-07-01 (Norwegian time).",
    "tidspunkt_after_mottatt": "The treatment date is after mottatt_dato.",
    "invalid_mottatt_dato": "mottatt_dato is not an ISO date.",
    "mottatt_after_delivery": "mottatt_dato is after the delivery date.",
    "invalid_kreditering": "kreditering is not 0 or 1.",
    "missing_kreditert_regning_id": "A credit note lacks kreditert_regning_id.",
    "unexpected_kreditert_regning_id": "A normal claim has a kreditert_regning_id.",
    "invalid_takster": "takster is not a list of code:count items with count >= 1.",
    "unknown_takst": "A takst code is not valid for the tjeneste.",
    "missing_diagnosis": "A GP or emergency-room claim has no diagnosis.",
    "invalid_diagnosis": "A diagnosis is not a well-formed ICPC2 or ICD10 code.",
    "invalid_fritak_egenandel": "fritak_egenandel is not a known exemption code.",
    "invalid_amount": "egenandel or refusjon is not a decimal number of at most 12 digits before the point.",
    "negative_amount": "A normal claim has a negative amount.",
    "egenandel_with_fritak": "egenandel is not 0 although fritak_egenandel is set.",
    "orphan_credit": "The credit note's original regning was never delivered.",
    "duplicate_credit": "The original regning was already credited by another credit note.",
}

KUHR_WARNINGS = {
    "retired_municipality": "bostedskommune was retired the year before; stored as delivered and mapped forward.",
    "unknown_diagnosis": "An ICPC2 code of valid shape has a letter that is not an ICPC-2 chapter.",
    "amount_above_tariff": "egenandel + refusjon is above 10 times the typical amount of the takster.",
    "unknown_column": "The file has a column the format does not know; it is ignored.",
}

# --- KPR-helse og omsorg and IPLOS records ---------------------------------------------------
CARE_RECORD_REASONS = {
    "fra_after_til": "fraDato is after tilDato.",
    "fra_after_year_end": "fraDato is after 31 December of the reporting year.",
    "fra_too_early": "fraDato is before 1980-01-01 or the person's birth year.",
    "til_before_year_start": "tilDato is before 1 January of the reporting year.",
    "unknown_tjenestekode": "tjenestekode is unknown or not valid in the reporting year.",
    "timer_missing": "timerPerUke is missing on an hour-based service.",
    "timer_not_expected": "timerPerUke is given on a service that is not hour-based.",
    "timer_out_of_range": "timerPerUke is <= 0 or above 168.",
    "died_before_year": "The person died before the reporting year.",
    "invalid_check_digits": "personId fails its mod-11 check digits.",
    "invalid_birth_date": "personId does not hold a real birth date.",
    "birth_after_event": "The birth date in personId is after the reporting year.",
    "malformed_pasient_id": "personId is not 11 digits.",
    "pasient_id_type_mismatch": "personId's type attribute does not match the form of the number.",
    "test_identity_in_production": "personId is a test identity, refused in production.",
    # IPLOS only
    "nul_character": _NUL_CHARACTER,
    "malformed_pseudonym": "pseudonym is not 64 lower-case hex characters.",
    "wrong_reporting_year": "rapporteringsaar differs from the extract's year.",
    "invalid_kommunenummer": "kommunenummer is not a code valid in the reporting year.",
    "invalid_kjonn": "kjonn is not an allowed value.",
    "invalid_fodselsaar": "fodselsaar is not a plausible year.",
    "invalid_date": "A date is not an ISO date.",
    "invalid_number": "A number is not a valid decimal.",
    "invalid_function_score": "A function variable is not 1-5, 9 or empty.",
}

CARE_WARNINGS = {
    "tjenestekode_recoded": "Service code 12 or 13 was recoded to 29 (valid from 2019).",
    "overlapping_long_term_stays": "Overlapping long-term stays (code 21) were merged.",
    "bostedskommune_differs": "bostedskommune differs from the reporting municipality.",
    "reported_by_two_municipalities": "The person is reported by two municipalities in the same year.",
    "assessment_older_than_decision": "The function assessment is older than the newest service decision.",
}

ALL_REASONS = {**FILE_REASONS, **KUHR_ROW_REASONS, **KUHR_WARNINGS, **CARE_RECORD_REASONS, **CARE_WARNINGS}


def message_for_codes(codes: list[str]) -> str:
    """The sentences of ``codes``, for a rejected row's ``message``."""
    return " ".join(ALL_REASONS.get(c, c) for c in codes)
