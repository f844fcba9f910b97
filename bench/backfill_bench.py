"""Benchmark of a full monthly backfill in a production-shaped deployment.

Starts the deployment as an operator runs it (PostgreSQL instance from deploy/dagster.yaml, a code server,
the daemon and the webserver as separate processes, a PostgreSQL warehouse), fills ``kuhr_claims`` with
``--claims-per-month`` synthetic counted regninger for every treatment month since 2016-07 (not timed),
stops the sensors, and then, in the same run, backfills every treatment month of the KUHR month job's
assets (``kuhr_treatment_months`` and ``kuhr_delivery_completeness``) through the webserver's GraphQL API:

  (a) as an asset backfill, with the assets' backfill policies (the summary: all months in one run;
      the statistics: a year per run);
  (b) as one run per partition (what a backfill of assets without backfill policies launches; launched
      through the API as the job's runs, each tagged with its partition).

It prints, for each, the runs launched and the wall time from launch to the backfill's completion.

    python bench/backfill_bench.py
    python bench/backfill_bench.py --claims-per-month 100000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CLAIMS_SQL = """
INSERT INTO kuhr_claims (regning_id, delivery_id, pid, kjonn, fodselsaar, bostedskommune, tjeneste,
                         behandlingsmaaned, mottatt_dato, kreditering, credited, is_contact, kontakttype,
                         egenandel, refusjon, late, suspected_double)
SELECT 'r' || m.n || '-' || i, 'bench', md5(CAST(i % 50000 AS TEXT)), CASE WHEN i % 2 = 0 THEN '1' ELSE '2' END,
       1930 + i % 90, '0301', 'FASTLEGE', m.month, m.month + (i % 200), FALSE, FALSE, TRUE, 'konsultasjon',
       170, 182, i % 200 >= 31, FALSE
FROM (SELECT ROW_NUMBER() OVER () AS n, CAST(d AS DATE) AS month
      FROM generate_series(DATE '2016-07-01', CAST(date_trunc('month', now()) AS DATE), INTERVAL '1 month') d) m,
     generate_series(1, :per_month) i
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server where the benchmark may create two databases")
    parser.add_argument("--claims-per-month", type=int, default=20_000)
    args = parser.parse_args()

    from kpr_pipeline.defs.kuhr.partitions import treatment_month_partitions
    from kpr_pipeline.warehouse import Warehouse
    from kpr_pipeline.warehouse.engine import normalise_url
    from kpr_pipeline_tests import deployment_helpers as dh

    admin_url = sa.engine.make_url(normalise_url(args.postgres))
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = [f"kpr_bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("warehouse", "instance")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    urls = [admin_url.set(database=n).render_as_string(hide_password=False) for n in names]
    try:
        warehouse = Warehouse(urls[0])
        warehouse.ensure_schema()
        with warehouse.begin() as conn:
            conn.execute(sa.text(CLAIMS_SQL), {"per_month": args.claims_per_month})
        months = treatment_month_partitions.get_partition_keys()
        claims = warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims")
        warehouse.dispose()
        print(f"{claims:,} claims in {len(months)} treatment months ({months[0]} .. {months[-1]})")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "landing").mkdir()
            settings = {"KPR_WAREHOUSE_URL": urls[0], "KPR_LANDING_DIR": str(root / "landing"),
                        "KPR_OUTPUT_DIR": str(root / "output")}
            with dh.deployment(root, urls[1], settings) as d:
                dh.stop_all_sensors(d)
                rows = []
                t0 = time.perf_counter()
                state = dh.wait_for_backfill(d, dh.launch_asset_backfill(
                    d, ["kuhr_treatment_months", "kuhr_delivery_completeness"], months, "bench: policies"), 7200)
                rows.append(("asset backfill, backfill policies", state, time.perf_counter() - t0))
                t0 = time.perf_counter()
                tag = uuid.uuid4().hex[:8]
                launched = dh.launch_run_per_partition(d, "kuhr_month_job", months, tag)
                statuses = dh.wait_for_runs(d, tag, len(launched), 7200)
                status = "SUCCESS" if set(statuses) == {"SUCCESS"} else str(statuses)
                rows.append(("one run per partition", {"status": status, "runs": launched}, time.perf_counter() - t0))
        print(f"\n{'backfill of every treatment month':<40} {'status':<20} {'runs':>5} {'wall time':>10}")
        for label, state, seconds in rows:
            print(f"{label:<40} {state['status']:<20} {len(state['runs']):>5} {seconds:>9.1f}s")
        print(f"\none run per partition took {rows[1][2] / rows[0][2]:.1f}x the wall time of the policies")
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                             {"n": name})
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


if __name__ == "__main__":
    main()
