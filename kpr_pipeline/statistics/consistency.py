"""Consistency of a statistics table across its levels, in SQL: each total row equals the sum of its parts
for the measures that count events (contacts, regninger, days), which add up exactly (spec/statistics.md:
person counts need not). Municipality -> county (``xx00``) -> country (``0000``, with the national-only
codes), and ``T`` = the sum of the sexes and of the age groups. Municipality cells left empty under the
``suppress`` split policy are skipped (the county keeps what they would hold)."""

from __future__ import annotations

from kpr_pipeline.domain.geography import NATIONAL_ONLY

_NATIONAL_ONLY = ", ".join(f"'{c}'" for c in NATIONAL_ONLY)
GEO_PARENT = (f"CASE WHEN kommunenummer IN ({_NATIONAL_ONLY}) OR (kommunenummer LIKE '__00') THEN '0000' "
              "ELSE SUBSTR(kommunenummer, 1, 2) || '00' END")


def _key(column: str) -> str:
    return f"COALESCE(CAST({column} AS VARCHAR(40)), '~')"


def mismatches_sql(table: str, keys: list[str], measures: list[str], where: str, totals: list[str],
                   year: str = "t.year") -> str:
    """SELECT of every (level, total row, measure) whose parts do not add up; empty when consistent.

    A split municipality's successors are apportioned cell by cell, so in their pre-split cells the sexes
    and age groups may miss ``T`` by rounding: those cells are not compared (``year`` is the SQL for the
    year of a row, to find them).
    """
    checks = []
    hierarchies = [("kommunenummer", GEO_PARENT, "kommunenummer <> '0000'", "")]
    successor = (f"AND NOT EXISTS (SELECT 1 FROM geography_split_weights s WHERE s.current_code = t.kommunenummer "
                 f"AND s.year = {year})")
    hierarchies += [(d, "'T'", f"{d} <> 'T'", successor) for d in totals]
    for column, parent, is_part, skip in hierarchies:
        others = [k for k in keys if k != column]
        group = ", ".join(others)
        join = " AND ".join([f"{_key('p.' + k)} = {_key('t.' + k)}" for k in others] + [f"t.{column} = p.parent"])
        sums = ", ".join(f"SUM({m}) AS {m}" for m in measures)
        differ = " OR ".join(f"t.{m} <> p.{m}" for m in measures)
        checks.append(f"""
SELECT '{column}' AS hierarchy, t.{column} AS total_row, COUNT(*) AS cells FROM (
  SELECT {group}, {parent} AS parent, {sums}, BOOL_OR(split_suppressed) AS has_empty
  FROM {table} WHERE {where} AND {is_part} GROUP BY {group}, {parent}) p
JOIN (SELECT * FROM {table} WHERE {where}) t ON {join}
WHERE NOT p.has_empty AND ({differ}) {skip}
GROUP BY t.{column}""")
    return "\nUNION ALL\n".join(checks)
