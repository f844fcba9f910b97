"""Benchmark of the KUHR statistics: a national-volume year of claims into the monthly and annual tables.

In one run on the same machine:

  (a) ``--rows`` counted regninger of one year (default 40 million, the national volume) written
      straight into ``kuhr_claims`` of a DuckDB warehouse (persons with a fixed sex, birth year and
      municipality, one in twenty moving once; random services, contact types and months; the generation
      is not timed), then the reference data;
  (b) for each table, a bare DuckDB ``GROUP BY`` over the same claims with the same counts at the finest
      level only (monthly: month x bostedskommune x tjeneste x kontakttype x kjonn x age group; annual:
      bostedskommune x tjeneste x kjonn x age group; COUNT(*), SUMs, COUNT(DISTINCT pid)); no levels, no
      totals, no zero-fill;
  (c) the pipeline's ``kuhr_contacts_monthly`` for the 12 months and ``kuhr_contacts_annual`` for the
      year (unit, county and national levels, T rows, split apportionment, zero-fill, population);
  (d) the same statistics on PostgreSQL (``--postgres-rows``, default the same; the claims copied in
      with COPY first, not timed) when PostgreSQL is reachable.

Target: (c) within 3x of (b), table by table. Each step prints seconds and rows per second.
``--postgres-rows 0`` leaves PostgreSQL out.

    python bench/statistics_bench.py
    python bench/statistics_bench.py --rows 4000000 --postgres-rows 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

YEAR = 2023

#: Claims of one year: each person has one sex, birth year and municipality (one in twenty moves once in the
#: year), a 64-character pseudonym like the pipeline's, random services, contact types and months.
CLAIMS_SQL = """
INSERT INTO kuhr_claims (regning_id, delivery_id, pid, kjonn, fodselsaar, bostedskommune, tjeneste, behandlingsmaaned,
                         mottatt_dato, kreditering, credited, is_contact, kontakttype, egenandel, refusjon, late,
                         suspected_double)
SELECT 'r' || i, 'bench', sha256(CAST(p AS VARCHAR)), CASE WHEN hash(p) % 2 = 0 THEN '1' ELSE '2' END,
       CAST(1920 + hash(p * 3) % 100 AS INTEGER),
       CASE WHEN hash(p * 17) % 20 = 0 AND month >= 1 + hash(p * 19) % 12 THEN m2.code ELSE m1.code END, t.tjeneste,
       make_date({year}, month, 1), make_date({year}, month, 1), FALSE, FALSE,
       t.kontakttype IS NOT NULL, t.kontakttype, 170, 182, FALSE, FALSE
FROM (SELECT i, CAST(hash(i * 7) % {persons} AS BIGINT) AS p, CAST(1 + hash(i * 5) % 12 AS BIGINT) AS month
      FROM range({rows}) r(i)) r
JOIN (SELECT code, ROW_NUMBER() OVER (ORDER BY code) - 1 AS k FROM geography_code_units
      WHERE year = {year}) m1 ON m1.k = CAST(hash(p * 11) % {codes} AS BIGINT)
JOIN (SELECT code, ROW_NUMBER() OVER (ORDER BY code) - 1 AS k FROM geography_code_units
      WHERE year = {year}) m2 ON m2.k = CAST(hash(p * 23) % {codes} AS BIGINT)
JOIN (SELECT tjeneste, CASE WHEN kontakt THEN kontakttype END AS kontakttype,
             ROW_NUMBER() OVER (ORDER BY tjeneste, takst) - 1 AS k FROM ref_kuhr_takster) t
  ON t.k = CAST(hash(i * 13) % {takster} AS BIGINT)
"""

#: The bare GROUP BY of each table: the same counts at the finest level only (no county or national
#: rows, no total rows, no code mapping or split apportionment, no zero-fill, no population).
AGE = """CASE WHEN {year} - fodselsaar <= 5 THEN 0 WHEN {year} - fodselsaar <= 15 THEN 1 WHEN {year} - fodselsaar <= 19
            THEN 2 ELSE 3 END"""
BARE_SQL = {
    "kuhr_contacts_monthly": """
CREATE TABLE bare AS
SELECT behandlingsmaaned, bostedskommune, tjeneste, kontakttype, kjonn, {age} AS age_group,
       COUNT(*) AS regninger, SUM(CASE WHEN is_contact THEN 1 ELSE 0 END) AS contacts,
       COUNT(DISTINCT pid) AS patients, SUM(egenandel) AS egenandel, SUM(refusjon) AS refusjon
FROM kuhr_claims GROUP BY ALL
""",
    "kuhr_contacts_annual": """
CREATE TABLE bare AS
SELECT bostedskommune, tjeneste, kjonn, {age} AS age_group, COUNT(*) AS regninger,
       SUM(CASE WHEN is_contact THEN 1 ELSE 0 END) AS contacts,
       SUM(CASE WHEN kontakttype = 'konsultasjon' THEN 1 ELSE 0 END) AS consultations,
       COUNT(DISTINCT CASE WHEN is_contact THEN pid END) AS patients,
       COUNT(DISTINCT CASE WHEN kontakttype = 'konsultasjon' THEN pid END) AS patients_consultation
FROM kuhr_claims GROUP BY ALL
""",
}


def _reference(url: str, home: Path) -> None:
    import dagster as dg

    from kpr_pipeline.definitions import build_definitions
    from kpr_pipeline.deployment import LOCAL_INSTANCE_YAML
    from kpr_pipeline.settings import Settings

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_bytes(LOCAL_INSTANCE_YAML.read_bytes())
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": url}))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert defs.resolve_job_def("reference_job").execute_in_process(instance=instance).success
    defs.resources["warehouse"].get().dispose()


def _statistics(url: str, rows: int, label: str) -> dict[str, float]:
    from kpr_pipeline.statistics import kuhr_contacts
    from kpr_pipeline.warehouse import Warehouse

    w = Warehouse(url)
    months = [dt.date(YEAR, m, 1) for m in range(1, 13)]
    t = time.perf_counter()
    cells = kuhr_contacts.compute_monthly(w, months, "weight")
    monthly = time.perf_counter() - t
    t = time.perf_counter()
    kuhr_contacts.compute_annual(w, [YEAR], "weight")
    annual = time.perf_counter() - t
    print(f"{label} kuhr_contacts_monthly: {monthly:.1f} s ({rows / monthly:,.0f} claims/s, {cells:,} cells)")
    print(f"{label} kuhr_contacts_annual:  {annual:.1f} s ({rows / annual:,.0f} claims/s)")
    print(f"{label} both: {monthly + annual:.1f} s")
    w.dispose()
    return {"kuhr_contacts_monthly": monthly, "kuhr_contacts_annual": annual}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000_000)
    parser.add_argument("--postgres-rows", type=int)
    parser.add_argument("--postgres-url", default=os.environ.get("KPR_TEST_POSTGRES_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    import duckdb
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    work = Path(tempfile.mkdtemp(prefix="kpr-statistics-bench-"))
    path = work / "warehouse.duckdb"
    url = f"duckdb:///{path}"
    _reference(url, work / "home")
    persons = max(1000, args.rows // 8)
    con = duckdb.connect(str(path))
    t = time.perf_counter()
    codes = con.execute(f"SELECT COUNT(*) FROM geography_code_units WHERE year = {YEAR}").fetchone()[0]
    takster = con.execute("SELECT COUNT(*) FROM ref_kuhr_takster").fetchone()[0]
    con.execute(CLAIMS_SQL.format(rows=args.rows, persons=persons, year=YEAR, codes=codes, takster=takster))
    print(f"(a) {args.rows:,} claims of {YEAR} written in {time.perf_counter() - t:.0f} s (not timed)")
    con.execute("SET memory_limit = '512MB'")
    bare = {}
    for table, sql in BARE_SQL.items():
        t = time.perf_counter()
        con.execute(sql.format(age=AGE.format(year=YEAR)))
        bare[table] = time.perf_counter() - t
        print(f"(b) bare DuckDB GROUP BY for {table}: {bare[table]:.1f} s ({args.rows / bare[table]:,.0f} claims/s)")
        con.execute("DROP TABLE bare")
    con.close()
    full = _statistics(url, args.rows, "(c) DuckDB")
    for table in BARE_SQL:
        print(f"(c)/(b) {table}: {full[table] / bare[table]:.1f}x (target: within 3x)")
    print(f"(c)/(b) both tables: {sum(full.values()) / sum(bare.values()):.1f}x; both tables against the monthly "
          f"bare GROUP BY alone: {sum(full.values()) / bare['kuhr_contacts_monthly']:.1f}x")
    if args.postgres_rows == 0:
        return
    pg_rows = args.postgres_rows or args.rows
    try:
        admin = sa.create_engine(args.postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                                 isolation_level="AUTOCOMMIT")
        name = f"kpr_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - a benchmark without PostgreSQL still reports DuckDB
        print(f"(d) PostgreSQL not reachable: {str(exc).splitlines()[0]}")
        return
    pg_url = sa.engine.make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        _reference(pg_url, work / "home_pg")
        con = duckdb.connect(str(path), read_only=True)
        csv = work / "claims.csv"
        con.execute(f"COPY (SELECT * FROM kuhr_claims LIMIT {pg_rows}) TO '{csv}' (HEADER, DELIMITER ',')")
        columns = [r[0] for r in con.execute("DESCRIBE kuhr_claims").fetchall()]
        con.close()
        engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg2://", 1))
        t = time.perf_counter()
        with engine.begin() as conn, csv.open("rb") as handle:
            # the secondary indexes are dropped for the bulk copy and built again after it (the statistics
            # scan the table; with its indexes the copy of 40M rows took 25 minutes)
            indexes = conn.execute(sa.text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'kuhr_claims' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)")).all()
            for name_, _ in indexes:
                conn.execute(sa.text(f'DROP INDEX "{name_}"'))
            cursor = conn.connection.driver_connection.cursor()
            cursor.copy_expert(f"COPY kuhr_claims ({', '.join(columns)}) FROM STDIN WITH CSV HEADER", handle)
            for _, definition in indexes:
                conn.execute(sa.text(definition))
            conn.execute(sa.text("ANALYZE kuhr_claims"))
        engine.dispose()
        print(f"(d) {pg_rows:,} claims copied into PostgreSQL in {time.perf_counter() - t:.0f} s (not timed)")
        _statistics(pg_url, pg_rows, "(d) PostgreSQL")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


if __name__ == "__main__":
    main()
