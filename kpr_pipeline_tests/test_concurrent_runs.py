"""Concurrent Dagster runs on different partitions against one PostgreSQL warehouse: no deadlock, no
duplicate, and the same claims as loading the deliveries one after another.

Three deliveries on three delivery dates (three partitions) share 3,000 regninger (resends of each
other), repeat one another's claims under new regning_ids (suspected doubles across deliveries) and the
last credits 500 of the shared regninger. Each is loaded by its own run in its own process, all at once,
with the production instance (PostgreSQL storage) as a deployment runs them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kpr_pipeline.deployment import PRODUCTION_INSTANCE_YAML, set_warehouse_pool_limit
from kpr_pipeline.ingest.kuhr import process_delivery, ready_manifests
from kpr_pipeline.synth.kuhr import _negate
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline_tests.conftest import _fresh_database
from kpr_pipeline_tests.deployment_helpers import instance_env
from kpr_pipeline_tests.kuhr_helpers import normal_claims, table_digests, write_delivery

DAYS = [dt.date(2017, 4, 3), dt.date(2017, 4, 4), dt.date(2017, 4, 5)]
OWN, SHARED, CREDITED = 20_000, 3_000, 500
KEY = "test-key"  # what the runs use: the development key is refused nowhere but in production

RUN = """
import sys
import dagster as dg
from kpr_pipeline.definitions import build_definitions
job = build_definitions().resolve_job_def("kuhr_delivery_job")
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(instance=instance, partition_key=sys.argv[1], raise_on_error=False)
    print(result.run_id, result.success, flush=True)
"""

#: Which delivery loaded a resent regning depends on which run published first: compare without it.
ATTRIBUTION = {"delivery_id", "row_number", "processed_at", "load_id", "run_id"}
COMPARED = ("kuhr_claims", "kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings", "kuhr_rejected_rows")


@pytest.fixture(scope="module")
def landing(kuhr_landing_source, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("concurrent_landing")
    shared = normal_claims(kuhr_landing_source, SHARED, DAYS[0], "shared")
    for i, day in enumerate(DAYS):
        # every delivery repeats the generator's claims under its own ids: suspected doubles across deliveries
        own = normal_claims(kuhr_landing_source, OWN, DAYS[0], f"d{i}")
        parts = [shared, own]
        if i == len(DAYS) - 1:
            notes = shared.head(CREDITED).copy()
            notes["kreditert_regning_id"] = notes["regning_id"]
            notes["regning_id"] = [f"credit-{j:05d}" for j in range(CREDITED)]
            notes["kreditering"] = "1"
            notes["egenandel"], notes["refusjon"] = _negate(notes["egenandel"]), _negate(notes["refusjon"])
            parts.append(notes)
        write_delivery(root, f"kuhr_{day:%Y%m%d}_001", day, pd.concat(parts, ignore_index=True))
    return root


def _content(warehouse: Warehouse) -> dict[str, tuple[int, str]]:
    return table_digests(warehouse, COMPARED, ATTRIBUTION)


def _totals(warehouse: Warehouse) -> dict[str, int]:
    row = warehouse.query("SELECT SUM(rows_loaded) AS rows_loaded, SUM(rows_rejected) AS rows_rejected, "
                          "SUM(rows_duplicate) AS rows_duplicate FROM kuhr_deliveries").iloc[0]
    return {k: int(v) for k, v in row.items()}


@pytest.mark.heavy(minutes=2)
def test_concurrent_runs_on_different_partitions_neither_deadlock_nor_duplicate(
        postgres_database, instance_postgres_database, landing, tmp_path, monkeypatch):
    # the reference: the same deliveries loaded one after another
    with _fresh_database() as sequential_url:
        sequential = Warehouse(sequential_url)
        sequential_landing = tmp_path / "sequential"
        shutil.copytree(landing, sequential_landing)
        for manifest in ready_manifests(sequential_landing):
            assert process_delivery(sequential, sequential_landing, manifest, False, KEY).status == "loaded"
        expected = _content(sequential)
        expected_totals = _totals(sequential)
        expected_credited = sequential.scalar("SELECT COUNT(*) FROM kuhr_claims WHERE credited")
        sequential.dispose()
    # the shared regninger, and the credit notes on them, less the generator's defective rows (rejected)
    assert expected_totals["rows_duplicate"] > 2 * SHARED * 0.9 and expected_credited > CREDITED * 0.8

    concurrent_landing = tmp_path / "concurrent"
    shutil.copytree(landing, concurrent_landing)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_INSTANCE_YAML, home / "dagster.yaml")
    env = {**os.environ, **instance_env(instance_postgres_database), "DAGSTER_HOME": str(home),
           "KPR_WAREHOUSE_URL": postgres_database, "KPR_LANDING_DIR": str(concurrent_landing),
           "KPR_OUTPUT_DIR": str(tmp_path / "output"), "KPR_PSEUDONYM_KEY": KEY, "PYTHONWARNINGS": "ignore"}
    # what a deployment does before runs start: `kpr-pipeline migrate`, and the daemon sets the pool's limit
    Warehouse(postgres_database).ensure_schema()
    for name in ("DAGSTER_HOME", *instance_env(instance_postgres_database)):
        monkeypatch.setenv(name, env[name])
    assert set_warehouse_pool_limit() == 3
    runs = [subprocess.Popen([sys.executable, "-c", RUN, day.isoformat()], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for day in DAYS]
    outcomes = [run.communicate(timeout=600) for run in runs]  # a deadlock would hang here (and fail)
    for run, (out, err) in zip(runs, outcomes):
        assert run.returncode == 0 and out.split()[-1] == "True", err[-3000:]

    warehouse = Warehouse(postgres_database)
    assert warehouse.scalar("SELECT COUNT(*) FROM (SELECT regning_id FROM kuhr_claims GROUP BY regning_id "
                            "HAVING COUNT(*) > 1) d") == 0
    deliveries = warehouse.query("SELECT * FROM kuhr_deliveries ORDER BY delivery_id")
    assert list(deliveries.status) == ["loaded"] * len(DAYS)
    assert (deliveries.rows_loaded + deliveries.rows_rejected + deliveries.rows_duplicate
            == deliveries.rows_in_file).all()
    assert int(deliveries.rows_loaded.sum()) == warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims")
    assert _totals(warehouse) == expected_totals
    assert warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims WHERE credited") == expected_credited
    assert _content(warehouse) == expected
    warehouse.dispose()
