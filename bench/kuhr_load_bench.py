"""Benchmark of KUHR delivery loading: the full path against bare loaders, on both warehouses.

In one run on the same machine, for one delivery file of ``--rows`` rows (default 2 million):

  (a) full path into DuckDB: verify, read, rules, pseudonymise, publish (process_delivery)
  (b) DuckDB's bare read_csv of the same file into a table (no rules, no pseudonyms)
  (c) full path into PostgreSQL
  (d) naive pandas: read the whole file, DataFrame.to_sql into PostgreSQL

Each is a separate process, so peak RSS is that step's alone. The warehouse's schema is created before
(a) and (c) are timed, by a process of its own: it is set up once, not per delivery. Before each step the
page cache is synced and PostgreSQL checkpointed (``settle``), so that no step pays for another's writes. ``--rss-sizes`` repeats (a) and (c)
for two sizes to show that peak memory does not grow with the file. The delivery is built from
generated claims, copied with fresh regning_ids and bill numbers so that copies are distinct claims.

    python bench/kuhr_load_bench.py                       # 2M rows, each step 3 times, then RSS at 1M and 4M
    python bench/kuhr_load_bench.py --rows 200000 --repeat 1 --rss-sizes 100000 400000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager, nullcontext
from pathlib import Path

from peak_memory import own_peak_rss_kib

POSTGRES = os.environ.get("KPR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DELIVERY_DATE = dt.date(2019, 3, 1)


def build_delivery(landing: Path, rows: int) -> Path:
    """A delivery of ``rows`` distinct claims: generated claims tiled with new ids."""
    import numpy as np
    import pandas as pd

    from kpr_pipeline.domain.landing import KUHR_FORMAT
    from kpr_pipeline.synth.kuhr import COLUMNS, KuhrGenerator
    from kpr_pipeline.synth.output import GroundTruth, manifest_for, open_gzip
    from kpr_pipeline.synth.population import build_population

    pop = build_population(3, 0.05)
    gen = KuhrGenerator(pop, 3, landing, GroundTruth(landing), 0.0)
    base = pd.concat([gen.claims_received(DELIVERY_DATE - dt.timedelta(days=k)) for k in range(3)], ignore_index=True)
    base = base[base.kreditering == "0"].reset_index(drop=True)
    base["mottatt_dato"] = np.minimum(base["mottatt_dato"].to_numpy(dtype=object), DELIVERY_DATE.isoformat())
    folder = landing / "kuhr"
    folder.mkdir(parents=True, exist_ok=True)
    delivery_id = f"kuhr_{DELIVERY_DATE:%Y%m%d}_001"
    path = folder / f"{delivery_id}.csv.gz"
    written, copy = 0, 0
    with open_gzip(path) as gz:
        gz.write((";".join(COLUMNS) + "\n").encode())
        while written < rows:
            part = base.iloc[: rows - written].copy()
            part["regning_id"] = [f"b{copy:04d}-{i:08d}" for i in range(len(part))]
            part["regningsnummer"] = (part["regningsnummer"].astype(np.int64) + copy * 10_000_000).astype(str)
            gz.write(part[COLUMNS].to_csv(sep=";", index=False, header=False, lineterminator="\n").encode())
            written += len(part)
            copy += 1
    m = manifest_for(path, KUHR_FORMAT, delivery_id, DELIVERY_DATE.isoformat(), written, "2019-03-01T02:00:00+01:00")
    (folder / f"{delivery_id}.manifest.json").write_text(m.to_json())
    return path


def fresh_postgres() -> str:
    import sqlalchemy as sa

    from kpr_pipeline.warehouse.engine import normalise_url

    admin = sa.create_engine(normalise_url(POSTGRES), isolation_level="AUTOCOMMIT")
    name = f"kpr_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(normalise_url(POSTGRES)).set(database=name).render_as_string(hide_password=False)


def drop_postgres(url: str) -> None:
    import sqlalchemy as sa

    from kpr_pipeline.warehouse.engine import normalise_url

    name = sa.engine.make_url(url).database
    admin = sa.create_engine(normalise_url(POSTGRES), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- the steps, each run in its own process ---------------------------------------------------
def step_schema(url: str, landing: str) -> int:
    """The warehouse's tables, created before (a) and (c) are timed: a one-time set-up, not part of loading a
    delivery ((b) and (d) create one bare table each, as part of their load)."""
    from kpr_pipeline.warehouse import Warehouse

    warehouse = Warehouse(url)
    warehouse.ensure_schema()
    warehouse.dispose()
    return 0


def step_full(url: str, landing: str) -> int:
    from kpr_pipeline.ingest.kuhr import process_delivery, ready_manifests
    from kpr_pipeline.warehouse import Warehouse

    warehouse = Warehouse(url)
    warehouse.ensure_schema()
    (manifest,) = ready_manifests(Path(landing))
    result = process_delivery(warehouse, Path(landing), manifest, False, "bench-key-" + "x" * 32)
    assert result.status == "loaded", result
    return result.rows_loaded + result.rows_rejected + result.rows_duplicate


def step_duckdb_read_csv(url: str, landing: str) -> int:
    import duckdb

    data = next((Path(landing) / "kuhr").glob("*.csv.gz"))
    con = duckdb.connect(url.removeprefix("duckdb:///"))
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_csv('{data}', delim=';', header=true, all_varchar=true)")
    return con.execute("SELECT COUNT(*) FROM raw").fetchone()[0]


def step_pandas_to_sql(url: str, landing: str) -> int:
    import pandas as pd
    import sqlalchemy as sa

    data = next((Path(landing) / "kuhr").glob("*.csv.gz"))
    frame = pd.read_csv(data, sep=";", dtype=str, keep_default_na=False)
    engine = sa.create_engine(url)
    frame.to_sql("naive", engine, index=False, chunksize=10_000)
    return len(frame)


STEPS = {"schema": step_schema, "full": step_full, "read_csv": step_duckdb_read_csv, "to_sql": step_pandas_to_sql}


def settle(url: str) -> None:
    """Start a step on a quiet machine: the page cache's dirty pages written (the last step's files) and, on
    PostgreSQL, a checkpoint taken (the last step's dirty buffers), so that no step pays for another's writes."""
    os.sync()
    if url.startswith("postgresql"):
        import sqlalchemy as sa

        from kpr_pipeline.warehouse.engine import normalise_url

        engine = sa.create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as c:
                c.execute(sa.text("CHECKPOINT"))
        except sa.exc.DBAPIError:  # CHECKPOINT needs a superuser or pg_checkpoint: then without
            pass
        finally:
            engine.dispose()


def measure(step: str, url: str, landing: Path) -> dict:
    if step == "full":
        subprocess.run([sys.executable, __file__, "--step", "schema", url, str(landing)], check=True,
                       capture_output=True)
    settle(url)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--step", step, url, str(landing)], capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    rows, peak_kib = (int(x) for x in proc.stdout.strip().splitlines()[-1].split())
    return {"rows": rows, "seconds": round(wall, 1), "rows_per_s": round(rows / wall), "peak_rss_mib": peak_kib // 1024}


def median_run(step: str, landing: Path, target, repeat: int) -> dict:
    """``repeat`` runs of ``step``, each into a fresh warehouse from ``target(i)`` (a context manager giving its
    URL): the median run, with every run's seconds and the highest peak RSS."""
    runs = []
    for i in range(repeat):
        with target(i) as url:
            runs.append(measure(step, url, landing))
    median = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {**median, "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs": [r["seconds"] for r in runs]}


@contextmanager
def postgres_target(_: int):
    url = fresh_postgres()
    try:
        yield url
    finally:
        drop_postgres(url)


def run_all(rows: int, rss_sizes: list[int], repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        landing = tmp / "landing"
        t0 = time.perf_counter()
        path = build_delivery(landing, rows)
        print(f"delivery: {rows:,} rows, {path.stat().st_size / 1e6:.0f} MB gzip, built in {time.perf_counter() - t0:.0f} s")

        def duckdb_target(name: str):
            return lambda i: nullcontext(f"duckdb:///{tmp / f'{name}{i}.duckdb'}")

        results = {
            "(a) full path, DuckDB": median_run("full", landing, duckdb_target("a"), repeat),
            "(b) DuckDB read_csv": median_run("read_csv", landing, duckdb_target("b"), repeat),
            "(c) full path, PostgreSQL": median_run("full", landing, postgres_target, repeat),
            "(d) pandas to_sql, PostgreSQL": median_run("to_sql", landing, postgres_target, repeat),
        }
        print(f"{'step':32} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS MiB':>13}  runs (s)")
        for name, r in results.items():
            print(f"{name:32} {r['rows']:>10,} {r['seconds']:>8} {r['rows_per_s']:>9,} {r['peak_rss_mib']:>13}  "
                  f"{', '.join(str(x) for x in r['runs'])}")
        a, b = results["(a) full path, DuckDB"], results["(b) DuckDB read_csv"]
        c, d = results["(c) full path, PostgreSQL"], results["(d) pandas to_sql, PostgreSQL"]
        print(f"(a)/(b) time ratio: {a['seconds'] / b['seconds']:.1f}x (target: within 3x)")
        print(f"(d)/(c) time ratio: {d['seconds'] / c['seconds']:.1f}x (target: (c) at least 5x faster)")
    if rss_sizes:
        print("peak RSS by file size (full path):")
        for size in rss_sizes:
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                build_delivery(tmp / "landing", size)
                duck = measure("full", f"duckdb:///{tmp / 'a.duckdb'}", tmp / "landing")
                with postgres_target(0) as pg:
                    post = measure("full", pg, tmp / "landing")
                print(f"  {size:>10,} rows: DuckDB {duck['peak_rss_mib']} MiB ({duck['rows_per_s']:,} rows/s), "
                      f"PostgreSQL {post['peak_rss_mib']} MiB ({post['rows_per_s']:,} rows/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rss-sizes", type=int, nargs="*", default=[1_000_000, 4_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; the median is reported")
    parser.add_argument("--step", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        name, url, landing = args.step
        rows = STEPS[name](url, landing)
        print(rows, own_peak_rss_kib())
        return
    run_all(args.rows, args.rss_sizes, args.repeat)


if __name__ == "__main__":
    main()
