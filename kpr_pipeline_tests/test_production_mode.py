"""``KPR_ENV=production``: nothing starts without a proper pseudonym key (none, too short, or the public
development key), test identities are refused as test users, and the key is in no log, table or file."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from kpr_pipeline.defs.run_partitions import range_tags
from kpr_pipeline.settings import DEVELOPMENT_PSEUDONYM_KEY, get_settings
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline_tests.leak_scan import file_leaks, occurrences_of, warehouse_leaks

PRODUCTION_KEY = "production-key-4f9c2e71a8d34b6f9e0c5d7a1b2c3d4e"  # what an operator puts in the secret store


@pytest.mark.parametrize("key", ["", "too-short-a-key", DEVELOPMENT_PSEUDONYM_KEY])
@pytest.mark.parametrize("command", [["-m", "kpr_pipeline.cli", "run"], ["-m", "kpr_pipeline.cli", "serve", "code-server"],
                                     ["-c", "import kpr_pipeline.definitions"]])
def test_production_refuses_to_start_without_a_proper_key(tmp_path, key, command):
    env = {**os.environ, "KPR_ENV": "production", "KPR_PSEUDONYM_KEY": key, "KPR_LANDING_DIR": str(tmp_path),
           "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode != 0
    assert "KPR_PSEUDONYM_KEY" in proc.stderr.splitlines()[-1]  # the last line says which setting, in one sentence
    assert not key or key not in proc.stdout + proc.stderr  # and never repeats the key


@pytest.mark.heavy(minutes=1)
def test_production_rejects_test_identities_and_shows_the_key_nowhere(kuhr_landing, tmp_path, monkeypatch, capfd,
                                                                       dagster_instance):
    from kpr_pipeline.definitions import build_definitions

    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    for name, value in {"KPR_ENV": "production", "KPR_PSEUDONYM_KEY": PRODUCTION_KEY, "KPR_WAREHOUSE_URL": url,
                        "KPR_LANDING_DIR": str(kuhr_landing)}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    defs = build_definitions()
    january = range_tags("2017-01-01", "2017-01-31")  # one run, as the UI's backfill of the month makes
    assert defs.resolve_job_def("kuhr_delivery_job").execute_in_process(instance=dagster_instance,
                                                                       tags=january).success

    # the generator's population is test identities only: in production not one claim is loaded
    warehouse = Warehouse(url)
    deliveries = warehouse.query("SELECT * FROM kuhr_deliveries WHERE status = 'loaded'")
    rows = int(deliveries.rows_in_file.sum())
    assert rows > 1000 and int(deliveries.rows_rejected.sum()) == rows
    assert warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims") == 0
    refused = warehouse.scalar("SELECT COUNT(*) FROM kuhr_rejected_rows WHERE reasons LIKE "
                               "'%test_identity_in_production%'")
    assert refused > 0.9 * rows  # the rest: the generator's planted faults in the identifier itself

    # the key is in no table, no file of the instance (runs, event log, compute logs), no output, no log line
    find = occurrences_of(PRODUCTION_KEY)
    assert warehouse_leaks(warehouse, find) == {}
    warehouse.dispose()
    assert file_leaks(tmp_path, find) == {}  # the warehouse file, DAGSTER_HOME, the output directory
    captured = capfd.readouterr()
    assert "kuhr_deliveries" in captured.err  # the run's log was captured (and scanned)
    assert PRODUCTION_KEY not in captured.out + captured.err
    # nor is any identifier (the identifiers of refused rows are stored as pseudonyms, like all others)
    assert warehouse_leaks(Warehouse(url)) == {}
    assert dg.DagsterRunStatus.SUCCESS in {r.status for r in dagster_instance.get_runs()}
