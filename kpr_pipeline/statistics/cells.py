"""The common machinery of the statistics: SQL that counts cells on the current division, zero-filled.

Every statistic of spec/statistics.md is a table of cells: a period (month or year), a row of the
current division (municipality, county ``xx00``, country ``0000``, codes counted nationally only such
as 9999) and the statistic's dimensions, some with a total row (``T``). ``compute_cells`` builds one
statement chain that runs unchanged on DuckDB and PostgreSQL:

1. the statistic's base rows, each code mapped to the unit it is counted in (``geography_code_units``),
   counted at unit, county and national level, with and without each total dimension, so distinct
   persons are distinct at every level (a person who moved counts in both municipalities but once in
   the county);
2. a municipality that was split is its own unit; its unit-level cells are apportioned to the
   successors by the change table's weights, each measure rounded by largest remainder so every
   total is preserved (spec: ``weight``); under ``suppress`` the successors' cells are then left empty
   (``split_suppressed``), under ``rollup`` the unit was already the county's ``xx99``;
3. the cells are written over the full grid (periods x units x the statistic's combinations), so a
   combination without events is 0, not a missing row.

The whole recomputation of a period range is one transaction: readers see the old or the new cells.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from kpr_pipeline.domain.geography import apportion
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert

#: Age groups of spec/statistics.md (age on 31 December, from birth year): label, lowest, highest age.
AGE_GROUPS = [("0-5", 0, 5), ("6-15", 6, 15), ("16-19", 16, 19), ("20-29", 20, 29), ("30-39", 30, 39),
              ("40-49", 40, 49), ("50-66", 50, 66), ("67-79", 67, 79), ("80-89", 80, 89), ("90+", 90, None)]
TOTAL = "T"
SEXES = ["1", "2", "9"]


def age_group_sql(age: str) -> str:
    """SQL mapping an age expression to its group label (a negative age, born after the year, is 0-5)."""
    whens = " ".join(f"WHEN {age} <= {high} THEN '{label}'" for label, _, high in AGE_GROUPS if high is not None)
    return f"CASE {whens} ELSE '{AGE_GROUPS[-1][0]}' END"


def values_sql(rows: list[tuple], columns: list[str], alias: str) -> str:
    """An inline table: ``(VALUES ...) AS alias(columns)``, literals quoted for SQL."""
    def literal(v):
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, dt.date):
            return f"CAST('{v.isoformat()}' AS DATE)"
        return "'" + str(v).replace("'", "''") + "'"
    body = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)
    return f"(VALUES {body}) AS {alias}({', '.join(columns)})"


@dataclass(frozen=True)
class Measure:
    name: str
    aggregate: str  # SQL aggregate over the base rows
    money: bool = False  # apportioned in øre, not whole units


@dataclass(frozen=True)
class CellSpec:
    """One statistic: its base rows, dimensions, measures and the combinations its grid has."""

    table: str
    period: str  # the period column of the table: treatment_month or year
    base_sql: str  # SELECT period, map_year, code, <dims>, <totals>, <measure inputs>; may use :a, :b
    dims: tuple[str, ...]  # always grouped
    totals: dict[str, str]  # dimension -> SQL literal of its total row ('T', or NULL for tjenestekode)
    measures: tuple[Measure, ...]
    #: SELECT <dims>, <totals>, first_year, last_year: every combination a cell can have (the grid)
    combos_sql: str
    extra: dict[str, str] = field(default_factory=dict)  # more columns: name -> SQL over the grid row g


def _cells_sql(spec: CellSpec, base: str, temp: str) -> str:
    """One GROUP BY per level and total combination, as UNION ALL (portable, and lighter than GROUPING SETS
    with several distinct counts, which exhausted DuckDB's memory limit on small inputs)."""
    measures = ", ".join(f"{m.aggregate} AS {m.name}" for m in spec.measures)
    levels = [("unit", "'unit'", "unit", ""), ("county || '00'", "'total'", "county", "WHERE county IS NOT NULL"),
              ("'0000'", "'total'", None, "")]
    selects = []
    for geo, level, geo_key, where in levels:
        for k in range(len(spec.totals) + 1):
            for kept in itertools.combinations(spec.totals, k):
                columns = [f"{d}" if d in kept else f"{lit} AS {d}" for d, lit in spec.totals.items()]
                keys = [spec.period, "map_year", *spec.dims, *([geo_key] if geo_key else []), *kept]
                selects.append(
                    f"SELECT {spec.period}, map_year, {geo} AS geo, {level} AS geo_level, "
                    f"{', '.join([*spec.dims, *columns])}, {measures} FROM {base} {where} GROUP BY {', '.join(keys)}")
    return f"CREATE TEMPORARY TABLE {temp} AS\n" + "\nUNION ALL\n".join(selects)


def _base_sql(spec: CellSpec, base: str) -> str:
    return f"""
CREATE TEMPORARY TABLE {base} AS
SELECT b.*, COALESCE(u.unit, '9999') AS unit, u.county
FROM ({spec.base_sql}) b
LEFT JOIN geography_code_units u ON u.year = b.map_year AND u.code = b.code
"""


def _key_columns(spec: CellSpec) -> list[str]:
    return [spec.period, *spec.dims, *spec.totals]


def _final_sql(spec: CellSpec, temp: str, apportioned: str, periods: list) -> str:
    keys = _key_columns(spec)
    names = [m.name for m in spec.measures]
    key_list = ", ".join(f"x.{k}" for k in keys)
    split_units = "SELECT DISTINCT year, unit FROM geography_split_weights"
    values = f"""
SELECT {", ".join(keys)}, geo, {", ".join(f"SUM({n}) AS {n}" for n in names)} FROM (
  SELECT {key_list}, x.geo, {", ".join(f"x.{n}" for n in names)}
  FROM {temp} x LEFT JOIN ({split_units}) su ON x.geo_level = 'unit' AND su.year = x.map_year AND su.unit = x.geo
  WHERE su.unit IS NULL
  UNION ALL
  SELECT {", ".join(keys)}, geo, {", ".join(names)} FROM {apportioned}
) cells GROUP BY {", ".join(keys)}, geo"""
    period_values = values_sql([(p, _year_of(p)) for p in periods], [spec.period, "map_year"], "pv")
    grid_dims = ", ".join(f"c.{d}" for d in [*spec.dims, *spec.totals])
    grid = f"""
SELECT pv.{spec.period}, pv.map_year, gu.code AS kommunenummer, {grid_dims}
FROM {period_values}
CROSS JOIN geography_units gu
CROSS JOIN ({spec.combos_sql}) c
WHERE pv.map_year >= c.first_year AND (c.last_year IS NULL OR pv.map_year <= c.last_year)"""
    join = " AND ".join([f"v.{spec.period} = g.{spec.period}", "v.geo = g.kommunenummer"]
                        + [f"COALESCE(CAST(v.{d} AS VARCHAR(40)), '~') = COALESCE(CAST(g.{d} AS VARCHAR(40)), '~')"
                           if spec.totals.get(d) == "NULL" else f"v.{d} = g.{d}" for d in [*spec.dims, *spec.totals]])
    suppressed = "SELECT DISTINCT year, current_code FROM geography_split_weights WHERE suppressed"
    measure_cols = ", ".join(
        f"CASE WHEN ss.current_code IS NOT NULL THEN NULL ELSE COALESCE(v.{n}, 0) END" for n in names)
    extra_names = "".join(f", {c}" for c in spec.extra)
    extra_values = "".join(f", {e}" for e in spec.extra.values())
    return f"""
INSERT INTO {spec.table} ({spec.period}, kommunenummer, {", ".join([*spec.dims, *spec.totals])}, {", ".join(names)},
                         split_suppressed, split_policy, computed_at{extra_names})
SELECT g.{spec.period}, g.kommunenummer, {", ".join("g." + d for d in [*spec.dims, *spec.totals])}, {measure_cols},
       ss.current_code IS NOT NULL, :policy, :now{extra_values}
FROM ({grid}) g
LEFT JOIN ({values}) v ON {join}
LEFT JOIN ({suppressed}) ss ON ss.year = g.map_year AND ss.current_code = g.kommunenummer
"""


def _apportion_splits(conn: sa.Connection, spec: CellSpec, temp: str, target: str) -> None:
    """A split municipality's unit-level cells shared among its successors by weight, totals preserved.

    Each cell is apportioned on its own by largest remainder (every successor's cell is within one of
    weight x value, and the successors' cells add up to the unit's); ties go by a hash of the cell, not
    always to the first successor. So in a successor's pre-split cells the sexes and age groups may miss
    their ``T`` row by rounding; every other total adds up exactly. Few cells are involved (a handful of
    split municipalities), so this is done in pandas.
    """
    keys = _key_columns(spec)
    names = [m.name for m in spec.measures]
    conn.execute(sa.text(f"CREATE TEMPORARY TABLE {target} AS SELECT {', '.join(keys)}, geo, "
                         f"{', '.join(names)} FROM {temp} WHERE 1 = 0"))
    rows = conn.execute(sa.text(f"""
        SELECT x.*, x.geo AS unit, s.current_code, s.weight FROM {temp} x
        JOIN geography_split_weights s ON x.geo_level = 'unit' AND s.year = x.map_year AND s.unit = x.geo""")).all()
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=list(rows[0]._fields))
    tie_break = pd.util.hash_pandas_object(frame[["current_code", *keys]].astype(str), index=False)
    frame = frame.iloc[tie_break.argsort(kind="stable")].reset_index(drop=True)
    out = frame[[*keys, "current_code"]].rename(columns={"current_code": "geo"})
    for m in spec.measures:
        scale = 100 if m.money else 1
        scaled = frame.assign(_v=(pd.to_numeric(frame[m.name]).astype(float) * scale).round())
        apportioned = apportion(scaled, "_v", ["unit", *keys])
        out[m.name] = apportioned.astype(float) / scale if m.money else apportioned.astype("int64")
    bulk_insert(conn, target, out)


def _year_of(period) -> int:
    return period.year if isinstance(period, dt.date) else int(period)


def compute_cells(conn: sa.Connection, spec: CellSpec, periods: list, policy: str, params: dict,
                  delete_where: str) -> int:
    """Replace the cells of ``periods`` (inside the caller's transaction); return the rows written."""
    tag = uuid.uuid4().hex[:12]
    base, temp, apportioned = f"base_{tag}", f"cells_{tag}", f"split_{tag}"
    conn.execute(sa.text(_base_sql(spec, base)), params)
    conn.execute(sa.text(_cells_sql(spec, base, temp)), params)
    _apportion_splits(conn, spec, temp, apportioned)
    conn.execute(sa.text(f"DELETE FROM {spec.table} WHERE {delete_where}"), params)
    now = dt.datetime.now(dt.timezone.utc)
    conn.execute(sa.text(_final_sql(spec, temp, apportioned, periods)), {**params, "policy": policy, "now": now})
    for table in (apportioned, temp, base):
        conn.execute(sa.text(f"DROP TABLE {table}"))
    return count_rows(conn, spec.table, delete_where, params)


def count_rows(conn: sa.Connection, table: str, where: str, params: dict) -> int:
    return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE {where}"), params).all()[0][0])


def split_policy_of(warehouse: Warehouse) -> str:
    """The split policy the warehouse's geography tables were built with (the statistics follow it)."""
    rows = warehouse.query("SELECT DISTINCT split_policy FROM geography_units")
    if rows.empty:
        raise RuntimeError("the geography tables are empty: materialise the reference asset geography_current "
                           "(kpr-pipeline run does) before the statistics")
    return str(rows["split_policy"].iloc[0])
