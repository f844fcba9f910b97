"""The project's copy of the reference data (see ``kpr_pipeline/reference_data/SOURCES.md``).

Loaders return tidy DataFrames with codes as zero-padded strings; they are cached because the
files never change while a process runs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference_data"
XSD_PATH = Path(__file__).resolve().parent.parent / "schemas" / "kpr-helse-omsorg-1.0.xsd"

#: The current municipality division that statistics are published on (spec/statistics.md).
CURRENT_DIVISION_YEAR = 2024
#: Codes that are not municipalities: Svalbard, Jan Mayen, unknown.
NON_MUNICIPAL_CODES = frozenset({"2100", "2200", "9999"})
UNKNOWN_MUNICIPALITY = "9999"


@lru_cache(maxsize=None)
def municipalities() -> pd.DataFrame:
    df = pd.read_csv(REFERENCE_DIR / "municipalities.csv", dtype={"code": str, "county_code": str})
    df["valid_to"] = df["valid_to"].astype("Int64")
    return df


@lru_cache(maxsize=None)
def municipality_changes() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / "municipality_changes.csv", dtype={"old_code": str, "new_code": str})


@lru_cache(maxsize=None)
def takster() -> pd.DataFrame:
    df = pd.read_csv(REFERENCE_DIR / "kuhr_takster.csv", sep=";", dtype={"takst": str, "kontakttype": str})
    df["kontakt"] = df["kontakt"].astype(str).str.lower().eq("true")
    df["rang"] = df["rang"].astype("Int64")
    return df


@lru_cache(maxsize=None)
def tjenestekoder() -> pd.DataFrame:
    df = pd.read_csv(REFERENCE_DIR / "kpr_tjenestekoder.csv", sep=";")
    df["gyldig_til"] = df["gyldig_til"].astype("Int64")
    return df


def valid_in_year(frame: pd.DataFrame, year: int, start: str, end: str) -> pd.Series:
    """Mask of rows whose inclusive validity years [start, end or open] contain ``year``."""
    return (frame[start] <= year) & (frame[end].isna() | (frame[end] >= year)).fillna(True).astype(bool)


def municipality_codes_valid(year: int, *, reporters_only: bool = False) -> list[str]:
    """Codes valid in ``year``; ``reporters_only`` drops 2100, 2200 and 9999 (the expected reporters)."""
    return list(_codes_valid(year, reporters_only))


@lru_cache(maxsize=None)
def _codes_valid(year: int, reporters_only: bool) -> tuple[str, ...]:
    m = municipalities()
    codes = m.loc[valid_in_year(m, year, "valid_from", "valid_to"), "code"]
    if reporters_only:
        codes = codes[~codes.isin(NON_MUNICIPAL_CODES)]
    return tuple(sorted(codes))


def tjenestekoder_valid(year: int) -> list[int]:
    t = tjenestekoder()
    return sorted(t.loc[valid_in_year(t, year, "gyldig_fra", "gyldig_til"), "kode"].astype(int))
