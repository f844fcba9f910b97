"""Parser for SSB table 07459 exports exactly as published (spec, reference/SOURCES.md).

The exports differ in encoding (ISO-8859-1 or UTF-8), separator (TAB, comma, semicolon), a title
preamble, wide year columns and two label styles (``0101 Halden`` and ``K-3001 Halden``). The code
is always the first four digits of the label; rows that are not municipalities (``K-21-22``,
``K-23``, ``K-Rest``) are dropped.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

_CODE = re.compile(r"^(?:K-)?(\d{4})\b")
_YEAR_COLUMN = re.compile(r"^Persons (\d{4})$")
_SEX = {"Males": "1", "Females": "2"}


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


def parse_ssb_07459(path: Path) -> pd.DataFrame:
    """Long table: year, kommunenummer, age (0..105, 105 = 105 or older), sex ('1', '2' or 'T'), persons."""
    text = _decode(Path(path).read_bytes())
    lines = text.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.lstrip('"').startswith("region"))
    body = "\n".join(lines[header_at:])
    dialect = csv.Sniffer().sniff(lines[header_at], delimiters="\t,;")
    df = pd.read_csv(io.StringIO(body), sep=dialect.delimiter, dtype=str, keep_default_na=False)
    year_columns = {c: int(m.group(1)) for c in df.columns if (m := _YEAR_COLUMN.match(c))}
    if not year_columns or "region" not in df.columns or "age" not in df.columns:
        raise ValueError(f"{Path(path).name}: not an SSB 07459 export (columns {list(df.columns)})")
    df["kommunenummer"] = df["region"].str.extract(_CODE, expand=False)
    df = df[df["kommunenummer"].notna()]
    df["age"] = df["age"].str.extract(r"^(\d+)", expand=False).astype(int)
    df["sex"] = df["sex"].map(_SEX) if "sex" in df.columns else "T"
    long = df.melt(
        id_vars=["kommunenummer", "age", "sex"], value_vars=list(year_columns), var_name="column", value_name="persons"
    )
    long["year"] = long["column"].map(year_columns).astype(int)
    long["persons"] = long["persons"].astype(int)
    return long[["year", "kommunenummer", "age", "sex", "persons"]].reset_index(drop=True)


def load_population(directory: Path) -> pd.DataFrame:
    """All exports in ``directory``; per year the total-sex rows come from the ``Personer*`` files."""
    frames = [parse_ssb_07459(p) for p in sorted(Path(directory).glob("*.csv"))]
    return pd.concat(frames, ignore_index=True)


def population_current(population: pd.DataFrame, policy: str, through_year: int) -> pd.DataFrame:
    """Population on current municipality borders, per year, code, age and sex.

    Each year's codes are mapped forward (``geography.code_map``, split ``policy``), split counts
    apportioned so that totals are preserved, and years after the last published year up to
    ``through_year`` carried forward from it and marked ``imputed``. Columns: year, kommunenummer,
    age, sex, persons, imputed, suppressed (a split under the ``suppress`` policy: the figure counts in
    county and national totals and is left empty wherever the municipality is shown).
    """
    from kpr_pipeline.domain.geography import apportion, code_map

    frames = []
    for year, part in population.groupby("year", sort=True):
        mapped = part.merge(code_map(part["kommunenummer"].unique().tolist(), int(year), policy),
                            left_on="kommunenummer", right_on="code")
        mapped["persons"] = apportion(mapped, "persons", ["kommunenummer", "age", "sex"])
        frames.append(mapped.groupby(["year", "current_code", "age", "sex"], as_index=False)
                      .agg(persons=("persons", "sum"), suppressed=("suppressed", "any")))
    out = pd.concat(frames, ignore_index=True).rename(columns={"current_code": "kommunenummer"})
    out["persons"] = out["persons"].astype("Int64")
    out["imputed"] = False
    last = int(out["year"].max())
    carried = [out[out["year"] == last].assign(year=y, imputed=True) for y in range(last + 1, through_year + 1)]
    out = pd.concat([out, *carried], ignore_index=True)
    return out[["year", "kommunenummer", "age", "sex", "persons", "imputed", "suppressed"]]
