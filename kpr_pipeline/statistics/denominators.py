"""Population denominators for the annual statistics: ``population_current`` summed to the cells' rows.

Population is on 1 January (SSB 07459), by the age SSB gives (completed years on 1 January) grouped
into the statistics' age groups, at municipality, county (``xx00``) and national (``0000``) level.
Under the ``suppress`` split policy the successors' municipality figures are left empty; county and
national figures stay whole. Sex-specific figures exist only for the years SSB's exports have them.
"""

from __future__ import annotations

from kpr_pipeline.domain.geography import NATIONAL_ONLY
from kpr_pipeline.statistics.cells import age_group_sql

_NATIONAL_ONLY = ", ".join(f"'{c}'" for c in NATIONAL_ONLY)

#: year, geo, sex, age_group, persons, persons_67plus, persons_80plus, imputed (for :ya..:yb)
POPULATION_CELLS_SQL = f"""
SELECT year,
  CASE WHEN GROUPING(kommunenummer) = 0 THEN kommunenummer WHEN GROUPING(county) = 0 THEN county || '00'
       ELSE '0000' END AS geo,
  sex,
  CASE WHEN GROUPING(age_group) = 1 THEN 'T' ELSE age_group END AS age_group,
  CASE WHEN GROUPING(kommunenummer) = 0 AND BOOL_OR(suppressed) THEN NULL ELSE SUM(persons) END AS persons,
  CASE WHEN GROUPING(kommunenummer) = 0 AND BOOL_OR(suppressed) THEN NULL
       ELSE SUM(CASE WHEN age >= 67 THEN persons ELSE 0 END) END AS persons_67plus,
  CASE WHEN GROUPING(kommunenummer) = 0 AND BOOL_OR(suppressed) THEN NULL
       ELSE SUM(CASE WHEN age >= 80 THEN persons ELSE 0 END) END AS persons_80plus,
  BOOL_OR(imputed) AS imputed
FROM (SELECT p.*, {age_group_sql("age")} AS age_group,
             CASE WHEN kommunenummer IN ({_NATIONAL_ONLY}) THEN NULL ELSE SUBSTR(kommunenummer, 1, 2) END AS county
      FROM population_current p WHERE year BETWEEN :ya AND :yb) p
GROUP BY GROUPING SETS ((year, sex, kommunenummer, county, age_group), (year, sex, kommunenummer, county),
                        (year, sex, county, age_group), (year, sex, county), (year, sex, age_group), (year, sex))
HAVING NOT (GROUPING(kommunenummer) = 1 AND GROUPING(county) = 0 AND county IS NULL)
"""


def rate_sql(numerator: str, denominator: str, per: int = 1) -> str:
    """``numerator`` per ``per`` of ``denominator``; empty (NULL) over an empty or unknown denominator."""
    return (f"CASE WHEN {denominator} > 0 AND {numerator} IS NOT NULL "
            f"THEN CAST({numerator} AS DOUBLE PRECISION) * {per} / {denominator} END")
