"""The common machinery of the statistics: SQL that counts cells on the current division, zero-filled.

Every statistic of spec/statistics.md is a table of cells: a period (month or year), a row of the
current division (municipality, county ``xx00``, country ``0000``, codes counted nationally only such
as 9999) and the statistic's dimensions, some with a total row (``T``). ``compute_cells`` builds one
statement chain that runs unchanged on DuckDB and PostgreSQL:

1. the statistic's base rows, each code mapped to the unit it is counted in (``geography_code_units``),
   grouped once by period, dimensions and person (the one pass at full volume). A person whose rows all
   fall in one cell, nearly everyone, is then a plain sum, up through counties, the country and the
   total rows; the few in several cells (moved, two services of a group) are counted per level, grouped
   by person first. So persons are distinct at every level: one who moved counts in both municipalities
   but once in the county;
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
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from kpr_pipeline.warehouse import Warehouse

#: Age groups of spec/statistics.md (age on 31 December, from birth year): label, lowest, highest age.
AGE_GROUPS = [("0-5", 0, 5), ("6-15", 6, 15), ("16-19", 16, 19), ("20-29", 20, 29), ("30-39", 30, 39),
              ("40-49", 40, 49), ("50-66", 50, 66), ("67-79", 67, 79), ("80-89", 80, 89), ("90+", 90, None)]
TOTAL = "T"
SEXES = ["1", "2", "9"]
#: PostgreSQL settings for the transaction that computes a statistic, measured with bench/statistics_bench.py
#: (4 million claims: 118 s with the defaults, 70 s with these). Hash tables need memory (with the default
#: 4 MB a year of claims is sorted on disk, by collation); merge joins of the grid sort 5 million rows by
#: collation where a hash join does not sort; parallel workers each build a partial table of nearly all
#: persons and then sort them to merge; JIT compiles for seconds per statement.
POSTGRES_SETTINGS = ("work_mem = '1GB'", "enable_mergejoin = off", "max_parallel_workers_per_gather = 0",
                     "jit = off")


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
    """A cell value: the sum over the cell's distinct persons of ``per_person``, an aggregate over a person's
    base rows in the cell (``SUM(...)`` for events and amounts, ``MAX(CASE WHEN ... THEN 1 ELSE 0 END)`` for
    a person counted once, ``COUNT(DISTINCT ...)`` for events a person brings to every cell they are in)."""

    name: str
    per_person: str
    money: bool = False  # apportioned in øre, not whole units


def events(condition: str = "TRUE") -> str:
    """Per-person aggregate: the person's base rows that meet ``condition`` (regninger, contacts)."""
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def persons(condition: str = "TRUE") -> str:
    """Per-person aggregate: 1 when any of the person's base rows in the cell meets ``condition``."""
    return f"MAX(CASE WHEN {condition} THEN 1 ELSE 0 END)"


@dataclass(frozen=True)
class CellSpec:
    """One statistic: its base rows, dimensions, measures and the combinations its grid has."""

    table: str
    period: str  # the period column of the table: treatment_month or year
    #: SELECT period, map_year, code, person, <dims>, <totals>, <measure inputs>; may use :a, :b
    base_sql: str
    dims: tuple[str, ...]  # always grouped
    totals: dict[str, str]  # dimension -> SQL literal of its total row ('T', or NULL for tjenestekode)
    measures: tuple[Measure, ...]
    #: SELECT <dims>, <totals>, first_year, last_year: every combination a cell can have (the grid)
    combos_sql: str
    extra: dict[str, str] = field(default_factory=dict)  # more columns: name -> SQL over the grid row g
    #: SQL type of each total dimension that is not text (the cell is text until split, ``_split_cell_sql``)
    total_types: dict[str, str] = field(default_factory=dict)


def _mapped_sql(rows: str, alias: str) -> str:
    """``rows`` (with ``map_year`` and ``code``), each code mapped to the unit (and county) it is counted in
    that year. Applied to few rows: to the one-cell persons' cells, and to the rows of the persons in
    several cells."""
    return f"""SELECT {alias}.*, COALESCE(u.unit, '9999') AS unit, u.county
FROM {rows}
LEFT JOIN geography_code_units u ON u.year = {alias}.map_year AND u.code = {alias}.code"""


CELL_SEPARATOR = "|"


def _cell_sql(spec: CellSpec) -> str:
    """A base row's cell below its dimensions as one text: the code and the values of the total dimensions
    joined by ``|`` (``0301|2|20-29``). Whether a person is in one cell is then two aggregates over one short
    text instead of two over each column: the persons pass is a third faster at national volume."""
    return f" || '{CELL_SEPARATOR}' || ".join(
        f"CAST({c} AS VARCHAR)" if c in spec.total_types else c for c in ["code", *spec.totals])


def _split_cell_sql(spec: CellSpec, cell: str) -> str:
    """The code and the total dimensions back out of ``cell`` (``_cell_sql``), as columns of their types."""
    parts = []
    for i, column in enumerate(["code", *spec.totals], start=1):
        part = f"SPLIT_PART({cell}, '{CELL_SEPARATOR}', {i})"
        parts.append(f"CAST({part} AS {spec.total_types[column]}) AS {column}" if column in spec.total_types
                     else f"{part} AS {column}")
    return ", ".join(parts)


def _persons_sql(spec: CellSpec, persons_table: str) -> str:
    """One row per person and (period, dims): their measures, and whether all their rows fall in one cell.

    Almost every person has one municipality code, sex and age group in a period, so the cells above them
    are plain sums of these rows; only the few in several (moved, several services of a group) need
    counting per level. This is the one pass over the base rows at full volume, so it reads the codes as
    reported: mapping them to units waits until there are cells, not claims, to map."""
    keys = [spec.period, "map_year", *spec.dims]
    single = "MIN(cell) = MAX(cell)"
    measures = ", ".join(f"{m.per_person} AS {m.name}" for m in spec.measures)
    # the person is kept only where it is needed again (in several cells): the table stays narrow
    return (f"CREATE TEMPORARY TABLE {persons_table} AS\nSELECT {', '.join(keys)}, MIN(cell) AS cell, "
            f"{single} AS single, CASE WHEN {single} THEN NULL ELSE person END AS person, {measures}\n"
            f"FROM (SELECT b.*, {_cell_sql(spec)} AS cell FROM ({spec.base_sql}) b) b "
            f"GROUP BY {', '.join([*keys, 'person'])}")


def _several_sql(spec: CellSpec, persons_table: str, several_keys: str, several: str) -> list[str]:
    """The base rows of the persons who are in several cells of a period (read again, few), mapped.

    Their keys are a table of their own first: analysed, PostgreSQL then knows it is small and hashes it,
    instead of guessing from the persons table (at 40 million claims it guessed wrong for many minutes)."""
    keys = [spec.period, "map_year", *spec.dims, "person"]
    on = " AND ".join(f"b.{k} = p.{k}" for k in keys)
    rows = f"(SELECT b.* FROM ({spec.base_sql}) b JOIN {several_keys} p ON {on}) m"
    return [f"CREATE TEMPORARY TABLE {several_keys} AS SELECT {', '.join(keys)} FROM {persons_table} WHERE NOT single",
            f"CREATE TEMPORARY TABLE {several} AS\n{_mapped_sql(rows, 'm')}"]


def _total_combinations(spec: CellSpec) -> list[tuple[str, ...]]:
    """Every choice of the total dimensions kept (the others at their total row)."""
    return [kept for k in range(len(spec.totals) + 1) for kept in itertools.combinations(spec.totals, k)]


def _sums(spec: CellSpec) -> str:
    """The measures summed, as BIGINT (money DECIMAL(18, 2)): narrower than the warehouses' default sums."""
    return ", ".join(f"CAST(SUM({m.name}) AS {'DECIMAL(18, 2)' if m.money else 'BIGINT'}) AS {m.name}"
                     for m in spec.measures)


def _level_selects(spec: CellSpec, source: Callable[[str | None, str], str]) -> list[str]:
    """One GROUP BY per level and total combination, as UNION ALL parts (portable, and lighter than GROUPING
    SETS, which with several distinct counts exhausted DuckDB's memory limit on small inputs).
    ``source(geo_key, keys)`` gives the FROM clause for a level (``unit``, ``county``, None for the country)."""
    selects = []
    for geo, geo_key in (("unit", "unit"), ("county || '00'", "county"), ("'0000'", None)):
        for kept in _total_combinations(spec):
            columns = [d if d in kept else f"{lit} AS {d}" for d, lit in spec.totals.items()]
            keys = ", ".join([spec.period, "map_year", *spec.dims, *([geo_key] if geo_key else []), *kept])
            selects.append(f"SELECT {spec.period}, map_year, {geo} AS geo, {', '.join([*spec.dims, *columns])}, "
                           f"{_sums(spec)} FROM {source(geo_key, keys)} GROUP BY {keys}")
    return selects


def _in_county(geo_key: str | None) -> str:
    """County rows leave out the codes counted nationally only (no county)."""
    return " WHERE county IS NOT NULL" if geo_key == "county" else ""


def _cells_sql(spec: CellSpec, persons_table: str, several: str, tables: dict[str, str]) -> list[str]:
    """The cells of every level and total combination, in two tables with one row per cell each:

    - ``one_cell``: the persons whose rows of a period fall in one cell are plain sums: into their unit's
      cells (``fine``: bounded by the grid, not by the claims), then to counties and to each total;
    - ``several_cells``: the few persons in several cells, grouped by person within each cell first, so
      each counts once in every cell they are in.

    A cell can have a row in both; they are added when written."""
    fine, counties = tables["fine"], tables["fine_counties"]
    cell_keys = ", ".join([spec.period, "map_year", *spec.dims])
    fine_keys = [spec.period, "map_year", *spec.dims, "unit", "county", *spec.totals]
    county_keys = [spec.period, "map_year", *spec.dims, "county", *spec.totals]
    per_person = ", ".join(f"{m.per_person} AS {m.name}" for m in spec.measures)

    def one_cell(geo_key, keys):
        return fine if geo_key == "unit" else counties + _in_county(geo_key)

    def several_cells(geo_key, keys):
        return f"(SELECT {keys}, {per_person} FROM {several}{_in_county(geo_key)} GROUP BY {keys}, person) x"
    return [
        f"CREATE TEMPORARY TABLE {fine} AS SELECT {', '.join(fine_keys)}, {_sums(spec)} FROM ("
        + _mapped_sql(f"(SELECT {cell_keys}, {_split_cell_sql(spec, 'cell')}, {_sums(spec)} FROM {persons_table} "
                      f"WHERE single GROUP BY {cell_keys}, cell) c", "c")
        + f") f GROUP BY {', '.join(fine_keys)}",
        f"CREATE TEMPORARY TABLE {counties} AS SELECT {', '.join(county_keys)}, {_sums(spec)} FROM {fine} "
        f"GROUP BY {', '.join(county_keys)}",
        f"CREATE TEMPORARY TABLE {tables['one_cell']} AS\n" + "\nUNION ALL\n".join(_level_selects(spec, one_cell)),
        f"CREATE TEMPORARY TABLE {tables['several_cells']} AS\n"
        + "\nUNION ALL\n".join(_level_selects(spec, several_cells)),
    ]


def _key_columns(spec: CellSpec) -> list[str]:
    return [spec.period, *spec.dims, *spec.totals]


def _apportion_splits_sql(spec: CellSpec, sources: list[str], target: str) -> str:
    """A split municipality's unit-level cells shared among its successors by weight, totals preserved.

    Each cell is apportioned on its own by largest remainder (every successor's cell is within one of
    weight x value, and the successors' cells add up to the unit's); ties go by an MD5 of the successor and
    the cell, so not always to the same successor. So in a successor's pre-split cells the sexes and age
    groups may miss their ``T`` row by rounding; every other total adds up exactly. Money is apportioned in
    øre. Window functions, so it runs in the warehouse like the rest.
    """
    keys = _key_columns(spec)
    names = [m.name for m in spec.measures]
    cell = ", ".join(["x.unit", *(f"x.{k}" for k in keys)])
    tie = "MD5(" + " || '|' || ".join(
        ["s.current_code", *(f"COALESCE(CAST(x.{k} AS VARCHAR(40)), '')" for k in keys)]) + ")"
    columns = []
    for m in spec.measures:
        e = (f"CAST(ROUND(CAST(x.{m.name} AS DOUBLE PRECISION) * {100 if m.money else 1}) AS DOUBLE PRECISION)"
             " * s.weight")
        share = (f"FLOOR({e}) + CASE WHEN ROW_NUMBER() OVER (PARTITION BY {cell} ORDER BY {e} - FLOOR({e}) DESC, "
                 f"{tie}) <= ROUND(SUM({e}) OVER (PARTITION BY {cell}) - SUM(FLOOR({e})) OVER (PARTITION BY {cell})) "
                 "THEN 1 ELSE 0 END")
        columns.append(f"CAST(({share}) / 100 AS DECIMAL(18, 2)) AS {m.name}" if m.money
                       else f"CAST({share} AS BIGINT) AS {m.name}")
    unit_rows = "\n  UNION ALL\n  ".join(
        f"SELECT {', '.join(keys)}, map_year, geo, {', '.join(names)} FROM {source} "
        "WHERE geo IN (SELECT unit FROM geography_split_weights)" for source in sources)
    return f"""CREATE TEMPORARY TABLE {target} AS
SELECT {", ".join(f"x.{k}" for k in keys)}, s.current_code AS geo, {", ".join(columns)}
FROM (SELECT {", ".join(keys)}, map_year, geo AS unit, {", ".join(f"SUM({n}) AS {n}" for n in names)} FROM (
  {unit_rows}) u
  GROUP BY {", ".join(keys)}, map_year, geo) x
JOIN geography_split_weights s ON s.year = x.map_year AND s.unit = x.unit"""


def _grid_sql(spec: CellSpec, periods: list, grid: str) -> str:
    """Every cell the statistic has: periods x rows of the current division x the statistic's combinations
    (a table of its own, so PostgreSQL knows its size and hash-joins the values to it)."""
    period_values = values_sql([(p, _year_of(p)) for p in periods], [spec.period, "map_year"], "pv")
    grid_dims = ", ".join(f"c.{d}" for d in [*spec.dims, *spec.totals])
    return f"""CREATE TEMPORARY TABLE {grid} AS
SELECT pv.{spec.period}, pv.map_year, gu.code AS kommunenummer, {grid_dims}
FROM {period_values}
CROSS JOIN geography_units gu
CROSS JOIN ({spec.combos_sql}) c
WHERE pv.map_year >= c.first_year AND (c.last_year IS NULL OR pv.map_year <= c.last_year)"""


def _final_sql(spec: CellSpec, tables: dict[str, str]) -> str:
    """The grid with each cell's value: one-cell persons + persons in several cells + shares of split
    municipalities, 0 where none.

    A split unit's own rows carry its old code, never a row of the current division (``statistics_geography``
    makes sure), so they drop out of the grid join by themselves."""
    keys = _key_columns(spec)
    names = [m.name for m in spec.measures]
    extras = f"""SELECT {", ".join(keys)}, geo, {", ".join(f"SUM({n}) AS {n}" for n in names)} FROM (
  SELECT {", ".join(keys)}, geo, {", ".join(names)} FROM {tables["several_cells"]}
  UNION ALL
  SELECT {", ".join(keys)}, geo, {", ".join(names)} FROM {tables["apportioned"]}
) e GROUP BY {", ".join(keys)}, geo"""

    def join(alias: str) -> str:
        return " AND ".join(
            [f"{alias}.{spec.period} = g.{spec.period}", f"{alias}.geo = g.kommunenummer"]
            + [f"COALESCE(CAST({alias}.{d} AS VARCHAR(40)), '~') = COALESCE(CAST(g.{d} AS VARCHAR(40)), '~')"
               if spec.totals.get(d) == "NULL" else f"{alias}.{d} = g.{d}" for d in [*spec.dims, *spec.totals]])
    suppressed = "SELECT DISTINCT year, current_code FROM geography_split_weights WHERE suppressed"
    measure_cols = ", ".join(
        f"CASE WHEN ss.current_code IS NOT NULL THEN NULL ELSE COALESCE(o.{n}, 0) + COALESCE(e.{n}, 0) END"
        for n in names)
    extra_names = "".join(f", {c}" for c in spec.extra)
    extra_values = "".join(f", {e}" for e in spec.extra.values())
    return f"""
INSERT INTO {spec.table} ({spec.period}, kommunenummer, {", ".join([*spec.dims, *spec.totals])}, {", ".join(names)},
                         split_suppressed, split_policy, computed_at{extra_names})
SELECT g.{spec.period}, g.kommunenummer, {", ".join("g." + d for d in [*spec.dims, *spec.totals])}, {measure_cols},
       ss.current_code IS NOT NULL, :policy, :now{extra_values}
FROM {tables["grid"]} g
LEFT JOIN {tables["one_cell"]} o ON {join("o")}
LEFT JOIN ({extras}) e ON {join("e")}
LEFT JOIN ({suppressed}) ss ON ss.year = g.map_year AND ss.current_code = g.kommunenummer
"""


def _year_of(period) -> int:
    return period.year if isinstance(period, dt.date) else int(period)


def cell_statements(spec: CellSpec, periods: list, delete_where: str, tag: str) -> tuple[list[str], dict[str, str]]:
    """The statements that replace the cells of ``periods``, in order, and the temporary tables they make."""
    tables = {name: f"{name}_{tag}" for name in ("persons", "several_keys", "several", "fine", "fine_counties",
                                                 "one_cell", "several_cells", "apportioned", "grid")}
    statements = [_persons_sql(spec, tables["persons"]),
                  *_several_sql(spec, tables["persons"], tables["several_keys"], tables["several"]),
                  *_cells_sql(spec, tables["persons"], tables["several"], tables),
                  _apportion_splits_sql(spec, [tables["one_cell"], tables["several_cells"]], tables["apportioned"]),
                  _grid_sql(spec, periods, tables["grid"]),
                  f"DELETE FROM {spec.table} WHERE {delete_where}",
                  _final_sql(spec, tables)]
    return statements, tables


def compute_cells(conn: sa.Connection, spec: CellSpec, periods: list, policy: str, params: dict,
                  delete_where: str) -> int:
    """Replace the cells of ``periods`` (inside the caller's transaction); return the rows written."""
    statements, tables = cell_statements(spec, periods, delete_where, uuid.uuid4().hex[:12])
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        for setting in POSTGRES_SETTINGS:
            conn.execute(sa.text(f"SET LOCAL {setting}"))
    params = {**params, "policy": policy, "now": dt.datetime.now(dt.timezone.utc)}
    for statement in statements:
        conn.execute(sa.text(statement), params)
        if postgres and statement.startswith("CREATE TEMPORARY TABLE"):
            # temporary tables have no statistics until analysed: without them the planner joins the grid
            # by nested loops or merge joins on half the keys (minutes instead of seconds)
            conn.execute(sa.text(f"ANALYZE {statement.split()[3]}"))
    for table in reversed(tables.values()):
        conn.execute(sa.text(f"DROP TABLE {table}"))
    if postgres:
        # millions of new rows: without fresh statistics (autovacuum comes later, if at all before the checks)
        # the planner expects a few thousand and sorts on disk; the totals check took 74 s instead of 48 s
        conn.execute(sa.text(f"ANALYZE {spec.table}"))
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
