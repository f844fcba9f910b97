"""The 2017 reconciliation between KPR-helse og omsorg and IPLOS (spec/statistics.md, item 6).

Persons are matched by the IPLOS pseudonym that the KPR load computed from the identifier
(``care_services.iplos_pseudonym``). Per reporting municipality (2017 codes as reported) and
service code, and nationally (``0000``, per service code and for all services with an empty
code): persons in each register, in both, only in one; decisions in each and matched; and for
matched decisions the mean difference KPR minus IPLOS in start and end dates (days; end only where
both have one) and hours per week. Decisions of one person, municipality and service code are
paired in date order. ``match_rate`` = persons in both / persons in either. It holds counts only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert

YEAR = 2017
NATIONAL = "0000"

_BASE = """
WITH kpr AS (
    SELECT 1 AS one, kommunenummer, tjenestekode, iplos_pseudonym AS p, fra_dato, til_dato, timer_per_uke,
           ROW_NUMBER() OVER (PARTITION BY kommunenummer, tjenestekode, iplos_pseudonym
                              ORDER BY fra_dato, til_dato, timer_per_uke) AS k
    FROM care_services WHERE reporting_year = 2017 AND iplos_pseudonym IS NOT NULL
), ipl AS (
    SELECT 1 AS one, kommunenummer, tjenestekode, pseudonym AS p, fra_dato, til_dato, timer_per_uke,
           ROW_NUMBER() OVER (PARTITION BY kommunenummer, tjenestekode, pseudonym
                              ORDER BY fra_dato, til_dato, timer_per_uke) AS k
    FROM iplos_services WHERE reporting_year = 2017
), matched AS (
    SELECT kpr.one, kpr.kommunenummer, kpr.tjenestekode, kpr.p,
           CAST(kpr.fra_dato - ipl.fra_dato AS DOUBLE PRECISION) AS start_diff,
           CAST(CASE WHEN kpr.til_dato IS NOT NULL AND ipl.til_dato IS NOT NULL
                     THEN kpr.til_dato - ipl.til_dato END AS DOUBLE PRECISION) AS end_diff,
           kpr.timer_per_uke - ipl.timer_per_uke AS hours_diff
    FROM kpr JOIN ipl ON kpr.kommunenummer = ipl.kommunenummer AND kpr.tjenestekode = ipl.tjenestekode
                     AND kpr.p = ipl.p AND kpr.k = ipl.k
)
"""

_CELLS = _BASE + """
, people AS (
    SELECT {cell}, p, MAX(in_kpr) AS in_kpr, MAX(in_ipl) AS in_ipl FROM (
        SELECT {cell}, p, 1 AS in_kpr, 0 AS in_ipl FROM kpr
        UNION ALL SELECT {cell}, p, 0 AS in_kpr, 1 AS in_ipl FROM ipl) u
    GROUP BY {cell}, p
), persons AS (
    SELECT {cell}, SUM(in_kpr) AS persons_kpr, SUM(in_ipl) AS persons_iplos,
           SUM(in_kpr * in_ipl) AS persons_both, SUM(in_kpr * (1 - in_ipl)) AS persons_only_kpr,
           SUM(in_ipl * (1 - in_kpr)) AS persons_only_iplos
    FROM people GROUP BY {cell}
), decisions AS (
    SELECT {cell}, SUM(from_kpr) AS decisions_kpr, SUM(1 - from_kpr) AS decisions_iplos FROM (
        SELECT {cell}, 1 AS from_kpr FROM kpr UNION ALL SELECT {cell}, 0 AS from_kpr FROM ipl) d
    GROUP BY {cell}
), diffs AS (
    SELECT {cell}, COUNT(*) AS decisions_matched, AVG(start_diff) AS mean_start_diff_days,
           AVG(end_diff) AS mean_end_diff_days, AVG(hours_diff) AS mean_hours_diff
    FROM matched GROUP BY {cell}
)
SELECT {select}, persons.persons_kpr, persons.persons_iplos, persons.persons_both, persons.persons_only_kpr,
       persons.persons_only_iplos, decisions.decisions_kpr, decisions.decisions_iplos,
       COALESCE(diffs.decisions_matched, 0) AS decisions_matched, diffs.mean_start_diff_days,
       diffs.mean_end_diff_days, diffs.mean_hours_diff
FROM persons JOIN decisions USING ({cell}) LEFT JOIN diffs USING ({cell})
"""

#: (grouping columns, select list) for the municipality cells, the national per-service rows and
#: the national total row (grouped by the constant column ``one``).
LEVELS = (
    ("kommunenummer, tjenestekode", "kommunenummer, tjenestekode"),
    ("tjenestekode", f"'{NATIONAL}' AS kommunenummer, tjenestekode"),
    ("one", f"'{NATIONAL}' AS kommunenummer, CAST(NULL AS INTEGER) AS tjenestekode"),
)


@dataclass(frozen=True)
class Reconciliation:
    cells: pd.DataFrame
    national: pd.Series  # the all-services national row

    def below_threshold(self, threshold: float) -> list[str]:
        """Municipalities whose match rate over all their persons is below ``threshold``."""
        per = self.municipality_rates()
        return sorted(per.index[per < threshold])

    def municipality_rates(self) -> pd.Series:
        c = self.cells[self.cells["kommunenummer"] != NATIONAL]
        return (c.groupby("kommunenummer")["persons_both"].sum()
                / (c.groupby("kommunenummer")[["persons_kpr", "persons_iplos"]].sum().sum(axis=1)
                   - c.groupby("kommunenummer")["persons_both"].sum()))


def compute(warehouse: Warehouse) -> Reconciliation:
    """Compute and store ``reconciliation_2017`` (replacing it); every aggregate runs in the warehouse."""
    frames = []
    with warehouse.begin() as conn:
        for cell, select in LEVELS:
            sql = _CELLS.format(cell=cell, select=select)  # "one" is a constant: the national total
            frames.append(Warehouse.query_in(conn, sql))
        cells = pd.concat(frames, ignore_index=True)
        union = cells["persons_kpr"] + cells["persons_iplos"] - cells["persons_both"]
        cells["match_rate"] = (cells["persons_both"] / union.where(union > 0)).astype(float)
        cells["computed_at"] = dt.datetime.now(dt.timezone.utc)
        cells = cells.sort_values(["kommunenummer", "tjenestekode"], na_position="first").reset_index(drop=True)
        conn.execute(sa.text("DELETE FROM reconciliation_2017"))
        bulk_insert(conn, "reconciliation_2017", cells)
    national = cells[(cells["kommunenummer"] == NATIONAL) & cells["tjenestekode"].isna()]
    return Reconciliation(cells, national.iloc[0] if len(national) else pd.Series(dtype=object))


def municipality_match_rates(warehouse: Warehouse) -> pd.DataFrame:
    """Per reporting municipality: persons in both registers over persons in either, summed over its service
    codes (``kommunenummer``, ``persons_both``, ``persons_either``, ``match_rate``; empty when not computed)."""
    rates = warehouse.query(
        "SELECT kommunenummer, SUM(persons_both) AS persons_both, "
        "SUM(persons_kpr + persons_iplos - persons_both) AS persons_either FROM reconciliation_2017 "
        f"WHERE kommunenummer <> '{NATIONAL}' GROUP BY kommunenummer ORDER BY kommunenummer")
    rates["match_rate"] = (rates["persons_both"] / rates["persons_either"].where(rates["persons_either"] > 0)
                           ).astype(float)
    return rates


def clear(warehouse: Warehouse) -> None:
    with warehouse.begin() as conn:
        conn.execute(sa.text("DELETE FROM reconciliation_2017"))
