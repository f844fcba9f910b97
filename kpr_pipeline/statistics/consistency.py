"""Consistency of a statistics table across its levels, in SQL: each total row equals the sum of its parts
for the measures that count events (contacts, regninger, days), which add up exactly (spec/statistics.md:
person counts need not). Municipality -> county (``xx00``) -> country (``0000``, with the national-only
codes), and ``T`` = the sum of the sexes and of the age groups. Municipality cells left empty under the
``suppress`` split policy are skipped (the county keeps what they would hold); so are the sexes and ages of
a split municipality's successors, apportioned cell by cell (they may miss ``T`` by rounding).

Each equation is one group: the total row with its measure and every part with the measure negated, so a
sum other than 0 is a mismatch. No self-join: a plain GROUP BY on both engines.
"""

from __future__ import annotations

from kpr_pipeline.domain.geography import NATIONAL_ONLY

_NATIONAL_ONLY = ", ".join(f"'{c}'" for c in NATIONAL_ONLY)
GEO_PARENT = (f"CASE WHEN kommunenummer IN ({_NATIONAL_ONLY}) OR (kommunenummer LIKE '__00') THEN '0000' "
              "ELSE SUBSTR(kommunenummer, 1, 2) || '00' END")


def mismatches_sql(table: str, keys: list[str], measures: list[str], where: str, totals: list[str],
                   year: str = "year") -> str:
    """SELECT of (hierarchy, total row, cells) for every total whose parts do not add up; empty when consistent.

    ``year`` is the SQL for a row's year (to find the split successors' cells).
    """
    successor = (f"NOT EXISTS (SELECT 1 FROM geography_split_weights s WHERE s.current_code = kommunenummer "
                 f"AND s.year = {year})")
    hierarchies = [("kommunenummer", GEO_PARENT, "kommunenummer <> '0000'", "kommunenummer LIKE '__00'", "1 = 1")]
    hierarchies += [(d, "'T'", f"{d} <> 'T'", f"{d} = 'T'", successor) for d in totals]
    checks = []
    for column, parent, is_part, is_total, keep in hierarchies:
        others = ", ".join(k for k in keys if k != column)
        negated = ", ".join(f"-{m} AS {m}" for m in measures)
        plain = ", ".join(measures)
        differ = " OR ".join(f"SUM({m}) <> 0" for m in measures)
        checks.append(f"""
SELECT '{column}' AS hierarchy, eq AS total_row, COUNT(*) AS cells FROM (
  SELECT {others}, eq FROM (
    SELECT {others}, {parent} AS eq, {negated}, 1 AS part, split_suppressed AS empty
    FROM {table} WHERE {where} AND {is_part} AND {keep}
    UNION ALL
    SELECT {others}, {column} AS eq, {plain}, 0 AS part, FALSE AS empty
    FROM {table} WHERE {where} AND {is_total} AND {keep}
  ) x GROUP BY {others}, eq
  HAVING SUM(part) > 0 AND SUM(part) < COUNT(*) AND NOT BOOL_OR(empty) AND ({differ})
) bad GROUP BY eq""")
    return "\nUNION ALL\n".join(checks)
