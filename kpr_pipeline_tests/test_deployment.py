"""The deployment as an operator runs it: PostgreSQL-backed Dagster (code server, daemon and webserver as
separate processes), a partition backfill launched through the webserver's GraphQL API (the call the UI's
backfill dialog makes), sensors turned on through the API, and the UI rendered in headless Chromium.

One test, because the three processes take a while to start and every phase builds on the one before.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import lxml.html
import pytest
import sqlalchemy as sa

from kpr_pipeline.defs.kuhr.partitions import delivery_date_partitions
from kpr_pipeline_tests import deployment_helpers as dh

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "deployment"


def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert browser, "Debian's chromium is needed (.ci/run installs it: apt-get install chromium)"
    return browser


def _browse(url: str, *args: str) -> subprocess.CompletedProcess:
    """A page of the single-page UI after its scripts and GraphQL calls settled (virtual time budget)."""
    return subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--virtual-time-budget=30000", "--window-size=1600,1000", *args, url],
                          capture_output=True, text=True, timeout=180)


def _deliveries(landing: Path, month: str) -> list[Path]:
    return sorted((landing / "kuhr").glob(f"kuhr_{month}*"))


def _warehouse_deliveries(url: str) -> dict[str, tuple[str, int, int, int, int]]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT delivery_id, status, rows_in_file, rows_loaded, rows_rejected, "
                                        "rows_duplicate FROM kuhr_deliveries")).all()
    except sa.exc.ProgrammingError:  # the schema is created by the first run
        rows = []
    finally:
        engine.dispose()
    return {r[0]: tuple(r[1:]) for r in rows}


def _wait_for(condition, timeout: float, what: str, d: dh.Deployment):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s\n{d.logs()}"
        time.sleep(3)


@pytest.fixture
def generated(tmp_path_factory) -> Path:
    from kpr_pipeline.synth.generator import GenerateOptions, generate

    out = tmp_path_factory.mktemp("deployment_landing")
    generate(GenerateOptions(out=out, seed=5, scale=0.0002, start="2024-01", end="2024-02", progress=False))
    return out


@pytest.mark.heavy(minutes=2)
def test_a_postgresql_deployment_backfills_from_the_api_runs_its_sensors_and_renders_the_ui(
        generated, tmp_path, postgres_database, instance_postgres_database):
    instance_url = instance_postgres_database
    landing = tmp_path / "landing"
    (landing / "kuhr").mkdir(parents=True)
    settings = {"KPR_WAREHOUSE_URL": postgres_database, "KPR_LANDING_DIR": str(landing),
                "KPR_OUTPUT_DIR": str(tmp_path / "output")}
    with dh.deployment(tmp_path / "deploy", instance_url, settings) as d:
        # the instance is the production one: PostgreSQL storage (its tables are in the instance database)
        engine = sa.create_engine(instance_url.replace("postgresql://", "postgresql+psycopg2://", 1))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM daemon_heartbeats")).scalar() > 0
        engine.dispose()
        dh.stop_all_sensors(d)  # so that the backfill alone processes January
        states = dh.sensors(d)
        assert {n for n, s in states.items() if s["status"] != "STOPPED"} == set(), states

        # 1. a partition backfill of January's delivery dates, launched as the UI's dialog does
        for path in _deliveries(generated, "202401"):
            shutil.copy(path, landing / "kuhr" / path.name)
        january = [f"2024-01-{day:02d}" for day in range(1, 32)]
        backfill = dh.launch_asset_backfill(d, "kuhr_deliveries", january, "January deliveries")
        state = dh.wait_for_backfill(d, backfill, timeout=300)
        assert state["status"] == "COMPLETED_SUCCESS", (state, d.logs())
        assert len(state["runs"]) == 1  # the single-run backfill policy: one run for 31 dates
        loaded = _warehouse_deliveries(postgres_database)
        manifests = {p.name.removesuffix(".manifest.json") for p in _deliveries(landing, "202401")
                     if p.name.endswith(".manifest.json")}
        assert set(loaded) == manifests
        for delivery, (status, rows, ok, rejected, duplicate) in loaded.items():
            assert status == "loaded" and rows == ok + rejected + duplicate and rows > 0, delivery

        # 2. the delivery sensor turned on through the API picks up February's deliveries as they arrive
        assert dh.start_sensor(d, "kuhr_delivery_sensor") == "RUNNING"
        assert dh.start_sensor(d, "kuhr_month_sensor") == "RUNNING"
        for path in _deliveries(generated, "202402"):
            shutil.copy(path, landing / "kuhr" / path.name)
        february = {p.name.removesuffix(".manifest.json") for p in _deliveries(landing, "202402")
                    if p.name.endswith(".manifest.json")}
        _wait_for(lambda: february <= set(_warehouse_deliveries(postgres_database)), 300,
                  "February's deliveries processed by the sensor's run", d)
        after = _warehouse_deliveries(postgres_database)
        assert all(after[k][0] == "loaded" for k in february)
        assert {k: v for k, v in after.items() if k in manifests} == loaded  # January untouched

        # 3. the UI: the asset graph and a partitioned asset's page render with assets and partition status
        _the_ui_renders(d)

    # 4. no identifier left the landing zone: not in the instance's PostgreSQL storage (runs, events, check
    # results, logs), the warehouse, the instance's files (compute logs), the output, the processes' output
    from kpr_pipeline.warehouse import Warehouse
    from kpr_pipeline_tests.leak_scan import database_leaks, file_leaks, warehouse_leaks

    assert database_leaks(instance_url) == {}
    warehouse = Warehouse(postgres_database)
    assert warehouse_leaks(warehouse) == {}
    warehouse.dispose()
    assert file_leaks(tmp_path / "deploy") == {}  # DAGSTER_HOME (compute logs) and the three processes' logs
    assert file_leaks(tmp_path / "output") == {}
    assert file_leaks(landing) != {}  # the scanner does find identifiers where they are


def _the_ui_renders(d: dh.Deployment) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d.graphql(dh.SET_NUX_SEEN)  # the first-visit community dialog, as a user dismisses it
    graph = f"{d.webserver_url}/locations/{dh.LOCATION}/asset-groups/kuhr"
    dom = _browse(graph, "--dump-dom").stdout  # the graph's nodes carry the asset names (text and links)
    names = set(re.findall(r"\b(?:kuhr|care)_[a-z_]+\b", dom))
    assert {"kuhr_deliveries", "kuhr_treatment_months", "kuhr_contacts_monthly"} <= names, dom[-3000:]
    _browse(graph, f"--screenshot={ARTIFACTS / 'asset_graph.png'}")
    assert (ARTIFACTS / "asset_graph.png").stat().st_size > 20_000

    partitions = f"{d.webserver_url}/assets/kuhr_deliveries?view=partitions"
    text = lxml.html.fromstring(_browse(partitions, "--dump-dom").stdout).text_content()
    materialized = re.search(r"Materialized \(([\d,]+)\)", text)
    assert materialized, text[:2000]
    # January's 31 dates by the backfill, February's 29 by the sensor's run (one contiguous range)
    assert int(materialized.group(1).replace(",", "")) == 31 + 29
    expected = len(delivery_date_partitions.get_partition_keys())  # every delivery date since 2016-07-01
    assert re.search(rf"{expected:,} Partitions", text), text[:2000]
    _browse(partitions, f"--screenshot={ARTIFACTS / 'kuhr_deliveries_partitions.png'}")
    assert (ARTIFACTS / "kuhr_deliveries_partitions.png").stat().st_size > 20_000
