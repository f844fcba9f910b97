"""The IPLOS extract format (spec/iplos-extract.md) and its record rules, vectorised over a chunk.

The same rules as for KPR-helse og omsorg where they make sense; the person is pseudonymous, so a
malformed pseudonym rejects the row instead of the identifier checks. Every value arrives as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.care.report import FUNCTION_VARIABLES
from kpr_pipeline.domain.landing import nul_rows

IPLOS_YEARS = range(2007, 2018)
FUNCTION_COLUMNS = tuple("f_" + v.lower() for v in FUNCTION_VARIABLES)
REQUIRED_COLUMNS = ("pseudonym", "rapporteringsaar", "kommunenummer", "kjonn", "fodselsaar", "tjenestekode",
                    "fra_dato", "til_dato", "timer_per_uke", *FUNCTION_COLUMNS)
EARLIEST_FRA = pd.Timestamp(1980, 1, 1)
MAX_HOURS = 168.0
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DECIMAL = r"[0-9]{1,3}(\.[0-9]{1,4})?"


@dataclass
class CheckedExtract:
    reasons: dict[str, np.ndarray]  # reason code -> mask of rejected rows
    typed: pd.DataFrame  # typed columns for loading (valid where the row is accepted)

    @property
    def rejected(self) -> np.ndarray:
        out = np.zeros(len(self.typed), dtype=bool)
        for mask in self.reasons.values():
            out |= mask
        return out

    def reason_lists(self, rows: np.ndarray) -> list[list[str]]:
        return [[code for code, mask in self.reasons.items() if mask[i]] for i in rows]


@lru_cache(maxsize=None)
def _codes(year: int) -> tuple[frozenset[str], frozenset[int], frozenset[int]]:
    """(municipality codes, service codes valid in ``year``, hour-based service codes)."""
    t = reference.tjenestekoder()
    hourly = frozenset(t.loc[t["enhet"] == "timer", "kode"].astype(int))
    return (frozenset(reference.municipality_codes_valid(year, reporters_only=True)),
            frozenset(reference.tjenestekoder_valid(year)), hourly)


def _date(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(parsed dates, mask of values that are not a real ISO date); empty values are NaT and not bad."""
    shaped = values.str.fullmatch(_DATE).fillna(False)
    parsed = pd.to_datetime(values.where(shaped), format="%Y-%m-%d", errors="coerce")
    bad = (values != "") & parsed.isna()
    return parsed, bad.to_numpy(dtype=bool)


def check_rows(rows: pd.DataFrame, year: int) -> CheckedExtract:
    municipalities, services, hourly = _codes(year)
    year_start, year_end = pd.Timestamp(year, 1, 1), pd.Timestamp(year, 12, 31)
    fra, bad_fra = _date(rows["fra_dato"])
    til, bad_til = _date(rows["til_dato"])
    kode = pd.to_numeric(rows["tjenestekode"].where(rows["tjenestekode"].str.fullmatch(r"[0-9]{1,4}").fillna(False)),
                         errors="coerce")
    born = pd.to_numeric(rows["fodselsaar"].where(rows["fodselsaar"].str.fullmatch(r"[0-9]{4}").fillna(False)),
                         errors="coerce")
    timer_shaped = rows["timer_per_uke"].str.fullmatch(_DECIMAL).fillna(False)
    timer = pd.to_numeric(rows["timer_per_uke"].where(timer_shaped), errors="coerce")
    has_timer = rows["timer_per_uke"] != ""
    is_hourly = kode.isin(list(hourly))
    valid_kode = kode.isin(list(services))
    bad_score = np.zeros(len(rows), dtype=bool)
    for column in FUNCTION_COLUMNS:
        bad_score |= ~rows[column].isin(["", "1", "2", "3", "4", "5", "9"]).to_numpy(dtype=bool)

    def mask(series) -> np.ndarray:
        return np.asarray(pd.Series(series).fillna(False), dtype=bool)

    reasons = {
        "nul_character": nul_rows(rows),
        "malformed_pseudonym": ~mask(rows["pseudonym"].str.fullmatch(r"[0-9a-f]{64}")),
        "wrong_reporting_year": mask(rows["rapporteringsaar"] != str(year)),
        "invalid_kommunenummer": ~mask(rows["kommunenummer"].isin(list(municipalities))),
        "invalid_kjonn": ~mask(rows["kjonn"].isin(["1", "2"])),
        "invalid_fodselsaar": ~mask((born >= 1880) & (born <= year)),
        "invalid_date": bad_fra | bad_til | mask(rows["fra_dato"] == ""),
        "invalid_number": mask(has_timer & ~timer_shaped),
        "unknown_tjenestekode": ~mask(valid_kode),
        "fra_after_til": mask(fra > til),
        "fra_after_year_end": mask(fra > year_end),
        "fra_too_early": mask((fra < EARLIEST_FRA) | (fra.dt.year < born)),
        "til_before_year_start": mask(til < year_start),
        "timer_missing": mask(is_hourly & ~has_timer),
        "timer_not_expected": mask(~is_hourly & valid_kode & has_timer),
        "timer_out_of_range": mask(timer.notna() & ((timer <= 0) | (timer > MAX_HOURS))),
        "invalid_function_score": bad_score,
    }
    typed = pd.DataFrame({
        "kommunenummer": rows["kommunenummer"], "pseudonym": rows["pseudonym"], "kjonn": rows["kjonn"],
        "fodselsaar": born.astype("Int64"), "tjenestekode": kode.astype("Int64"),
        "fra_dato": fra.dt.date, "til_dato": til.dt.date, "timer_per_uke": timer,
        **{c: pd.to_numeric(rows[c].where(rows[c] != ""), errors="coerce").astype("Int16") for c in FUNCTION_COLUMNS},
    })
    return CheckedExtract(reasons={k: v for k, v in reasons.items()}, typed=typed)
