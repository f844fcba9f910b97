"""Faults injected into real loads: a process killed with SIGKILL in the middle of a bulk load leaves nothing
of the delivery visible, and the rerun converges to exactly the state of an undisturbed load (table
checksums); PostgreSQL restarted in the middle of a Dagster run fails the step with a clear message, and the
step's retry converges to the same state. (Sensor ticks repeated or interrupted: test_kuhr_dagster.py;
concurrent runs: test_concurrent_runs.py.)"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from kpr_pipeline.ingest.kuhr import process_delivery, ready_manifests
from kpr_pipeline.ingest.kuhr_check import SPILL_PREFIX
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline_tests import private_postgres
from kpr_pipeline_tests.kuhr_helpers import normal_claims, table_digests, write_delivery

KEY = "test-key"
ROWS = 120_000  # a few seconds of loading: time to be killed in the middle of it
DAY = dt.date(2017, 4, 1)
USER_TABLES = ("kuhr_deliveries", "kuhr_claims", "kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings",
               "kuhr_rejected_rows", "landing_files", "quarantine_events")
VOLATILE = {"processed_at", "quarantined_at", "run_id", "load_id", "refreshed_at", "first_seen_at", "touched_at"}

LOADER = """
import sys, time
from pathlib import Path
from kpr_pipeline.ingest.kuhr import process_delivery
from kpr_pipeline.warehouse import Warehouse
warehouse = Warehouse(sys.argv[1]); warehouse.ensure_schema()
print("loading", flush=True)
t0 = time.perf_counter()
result = process_delivery(warehouse, Path(sys.argv[2]), Path(sys.argv[3]), False, "test-key")
print("done", result.status, result.rows_loaded, round(time.perf_counter() - t0, 2), flush=True)
"""


@pytest.fixture(scope="module")
def big_landing(kuhr_landing_source, tmp_path_factory) -> Path:
    """One delivery of 120,000 regninger: the generator's normal claims, repeated under new regning_ids."""
    rows = normal_claims(kuhr_landing_source, ROWS, DAY, "fault")
    landing = tmp_path_factory.mktemp("big_landing")
    write_delivery(landing, "kuhr_20170401_001", DAY, rows)
    return landing


def _checksums(warehouse: Warehouse) -> dict[str, tuple[int, str]]:
    return table_digests(warehouse, USER_TABLES, VOLATILE)


def _loader(url: str, landing: Path) -> subprocess.Popen:
    (manifest,) = ready_manifests(landing)
    return subprocess.Popen([sys.executable, "-c", LOADER, url, str(landing), str(manifest)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _second_warehouse(request, warehouse_url: str, tmp_path: Path) -> str:
    if warehouse_url.startswith("duckdb"):
        return f"duckdb:///{tmp_path / 'undisturbed.duckdb'}"
    return request.getfixturevalue("instance_postgres_database")  # any second fresh database


@pytest.mark.heavy(minutes=1)
def test_sigkill_in_the_middle_of_a_bulk_load_leaves_nothing_and_the_rerun_converges(
        request, warehouse_url, big_landing, tmp_path):
    import shutil

    # the undisturbed load, in its own warehouse, timed
    clean_landing = tmp_path / "clean"
    shutil.copytree(big_landing, clean_landing)
    undisturbed_url = _second_warehouse(request, warehouse_url, tmp_path)
    proc = _loader(undisturbed_url, clean_landing)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    seconds = float(out.split()[-1])
    undisturbed = Warehouse(undisturbed_url)
    expected = _checksums(undisturbed)
    undisturbed.dispose()
    assert expected["kuhr_claims"][0] > 0

    # the same load, killed half-way through
    landing = tmp_path / "killed"
    shutil.copytree(big_landing, landing)
    proc = _loader(warehouse_url, landing)
    assert proc.stdout.readline().strip() == "loading"
    time.sleep(seconds / 2)
    assert proc.poll() is None, "the load ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    warehouse = Warehouse(warehouse_url)
    after_kill = _checksums(warehouse)
    assert all(rows == 0 for rows, _ in after_kill.values()), after_kill  # nothing of it is visible

    # the rerun (what the retry or the next sensor tick does) converges to the undisturbed state
    (manifest,) = ready_manifests(landing)
    result = process_delivery(warehouse, landing, manifest, False, KEY)
    assert result.status == "loaded"
    assert _checksums(warehouse) == expected
    warehouse.dispose()
    # and the killed process's spill directory (pids only, never an identifier) was removed by the rerun
    assert not list(Path(tempfile.gettempdir()).glob(f"{SPILL_PREFIX}{proc.pid}-*"))


def _restart_during_copy(cluster: private_postgres.Cluster, database: str, restarted: list) -> None:
    """Wait until a bulk load (COPY) into ``database`` is running, then restart the server under it."""
    engine = sa.create_engine(cluster.url(), poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            loading = conn.execute(sa.text("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = :d AND "
                                           "state = 'active' AND query LIKE 'COPY %FROM STDIN%'"), {"d": database}).all()
        if loading[0][0]:
            cluster.restart()
            restarted.append(time.monotonic())
            return
        time.sleep(0.05)


@pytest.mark.heavy(minutes=2)
def test_postgresql_restarted_during_a_run_fails_the_step_clearly_and_the_retry_converges(
        private_cluster, big_landing, tmp_path, dagster_instance):
    import shutil

    from kpr_pipeline.definitions import build_definitions
    from kpr_pipeline.settings import Settings, get_settings

    key = get_settings().pseudonym_key  # the key the asset uses
    reference_landing = tmp_path / "reference"
    shutil.copytree(big_landing, reference_landing)
    reference = Warehouse(private_cluster.create_database("reference"))
    (manifest,) = ready_manifests(reference_landing)
    assert process_delivery(reference, reference_landing, manifest, False, key).status == "loaded"
    expected = _checksums(reference)
    reference.dispose()

    landing = tmp_path / "restarted"
    shutil.copytree(big_landing, landing)
    url = private_cluster.create_database("kpr")
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": url, "KPR_LANDING_DIR": str(landing),
                                                "KPR_OUTPUT_DIR": str(tmp_path / "output")}))
    restarted: list[float] = []
    restarter = threading.Thread(target=_restart_during_copy, args=(private_cluster, "kpr", restarted))
    restarter.start()
    result = defs.resolve_job_def("kuhr_delivery_job").execute_in_process(
        instance=dagster_instance, partition_key=DAY.isoformat(), raise_on_error=False)
    restarter.join()
    assert restarted, "the load ended before the server could be restarted under it"

    # the attempt failed with a message that says what happened, and the step's retry loaded the delivery
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 1 and retries[0].step_key == "kuhr_deliveries"
    cause = retries[0].event_specific_data.error.cause
    assert cause.cls_name == "WarehouseUnavailable", cause.to_string()
    assert cause.message.startswith(f"kpr_pipeline.warehouse.engine.WarehouseUnavailable: The warehouse at "
                                    f"postgresql+psycopg2://postgres@127.0.0.1:{private_cluster.port}/kpr went "
                                    "away or refused the connection (")
    assert "nothing of it is kept" in cause.message
    assert result.success
    warehouse = Warehouse(url)
    assert _checksums(warehouse) == expected  # exactly the state of an undisturbed load
    warehouse.dispose()
