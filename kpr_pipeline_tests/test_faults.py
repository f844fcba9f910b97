"""Faults injected into real loads: a process killed with SIGKILL in the middle of a bulk load leaves nothing
of the delivery visible, and the rerun converges to exactly the state of an undisturbed load (table
checksums); a sensor tick repeated or interrupted neither skips nor double-processes a delivery."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kpr_pipeline.ingest.kuhr import STAGED, process_delivery, ready_manifests
from kpr_pipeline.warehouse import Warehouse
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
    for table in STAGED:  # and what the killed attempt had staged is gone
        assert warehouse.scalar(f"SELECT COUNT(*) FROM stage_{table}") == 0
    warehouse.dispose()
