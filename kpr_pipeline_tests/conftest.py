"""Fixtures: both warehouses (a DuckDB file and a fresh PostgreSQL database) and real Dagster instances.

PostgreSQL comes from KPR_TEST_POSTGRES_URL (default: the local server). Without it the PostgreSQL
tests are skipped with one reason, except in CI (CI=true), where a missing PostgreSQL fails.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import pytest
import sqlalchemy as sa

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL = os.environ.get("KPR_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
IN_CI = os.environ.get("CI", "").lower() == "true"


@lru_cache(maxsize=1)
def postgres_problem() -> str | None:
    """None when PostgreSQL answers; otherwise why not, in one line."""
    from kpr_pipeline.warehouse.engine import normalise_url

    try:
        engine = sa.create_engine(normalise_url(POSTGRES_URL))
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL tests skipped: no PostgreSQL at KPR_TEST_POSTGRES_URL ({type(exc).__name__})"


def pytest_report_header(config):
    problem = postgres_problem()
    return [f"warehouses: duckdb, postgresql ({problem or 'reachable'})"]


def _needs_postgres(item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return ("postgres_database" in item.fixturenames or "private_cluster" in item.fixturenames or params.get("warehouse_url") == "postgresql"
            or params.get("reference_warehouse_url") == "postgresql")


def pytest_collection_modifyitems(config, items):
    """The heavy tests first, longest first, so that no worker starts the longest test last (``--dist worksteal``:
    a worker that runs out takes half of the other's queue; with ``--dist load`` the first worker got every heavy
    test and the other sat idle for 18 minutes); without PostgreSQL (and outside CI) leave its tests out and
    say so once, at the end."""
    def weight(item) -> float:
        heavy = item.get_closest_marker("heavy")
        return heavy.kwargs.get("minutes", 1) if heavy else 0

    items.sort(key=weight, reverse=True)  # stable: the rest keep their order
    problem = postgres_problem()
    if not problem or IN_CI:
        return
    skipped = [i for i in items if _needs_postgres(i)]
    if skipped:
        items[:] = [i for i in items if not _needs_postgres(i)]
        config.hook.pytest_deselected(items=skipped)
        config._kpr_postgres_skipped = (len(skipped), problem)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    count, problem = getattr(config, "_kpr_postgres_skipped", (0, None))
    if count:
        terminalreporter.write_line(f"{problem}: {count} tests not run (set KPR_TEST_POSTGRES_URL).", yellow=True)


def require_postgres() -> None:
    problem = postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)


def _admin():
    from kpr_pipeline.warehouse.engine import normalise_url

    admin_url = sa.engine.make_url(normalise_url(POSTGRES_URL))
    return admin_url, sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")


def _drop_database(admin, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
        ), {"n": name})
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


@contextmanager
def _fresh_database(template: str | None = None):
    """A new PostgreSQL database (a copy of ``template`` if given), dropped afterwards; yields its URL."""
    require_postgres()
    admin_url, admin = _admin()
    name = f"kpr_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        if template:  # a template may not have other sessions while it is copied
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": template})
        conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


@pytest.fixture(autouse=True)
def _output_dir(tmp_path: Path, monkeypatch):
    """What a test's assets and checks write to KPR_OUTPUT_DIR (Data Docs results, reports, publication) stays
    in the test's own directory (the command-line tests unset it to use the default, data/output)."""
    from kpr_pipeline.settings import get_settings

    monkeypatch.setenv("KPR_OUTPUT_DIR", str(tmp_path / "output"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def postgres_database():
    """A fresh PostgreSQL database for one test, dropped afterwards; yields its URL."""
    with _fresh_database() as url:
        yield url


@pytest.fixture
def private_cluster():
    """A PostgreSQL server of the test's own on a free port, which the test may restart or stop."""
    from kpr_pipeline_tests.private_postgres import available, private_cluster

    if not available():
        pytest.fail("a private PostgreSQL server needs initdb and pg_ctl (and runuser when run as root)")
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture
def instance_postgres_database():
    """Another fresh PostgreSQL database, for a Dagster instance's storage (deploy/dagster.yaml)."""
    with _fresh_database() as url:
        yield url


def _load_reference(url: str, home: Path) -> None:
    """The real reference_job into the warehouse at ``url`` (then every connection to it is closed)."""
    import shutil

    import dagster as dg

    from kpr_pipeline.definitions import build_definitions
    from kpr_pipeline.deployment import LOCAL_INSTANCE_YAML
    from kpr_pipeline.settings import Settings

    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": url}))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert defs.resolve_job_def("reference_job").execute_in_process(instance=instance).success
    defs.resources["warehouse"].get().dispose()


@pytest.fixture(scope="session")
def reference_templates(tmp_path_factory):
    """Warehouses holding the reference data (loaded once per session by the real reference_job), copied for
    each test that needs them: loading 940,000 population rows per test would dominate the suite."""
    made: dict[str, str] = {}

    def template(kind: str) -> str:
        if kind not in made:
            root = tmp_path_factory.mktemp(f"reference_{kind}")
            if kind == "duckdb":
                made[kind] = str(root / "reference.duckdb")
                _load_reference(f"duckdb:///{made[kind]}", root / "home")
            else:
                require_postgres()
                admin_url, admin = _admin()
                name = f"kpr_template_{uuid.uuid4().hex[:12]}"
                with admin.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                admin.dispose()
                made[kind] = name
                _load_reference(admin_url.set(database=name).render_as_string(hide_password=False), root / "home")
        return made[kind]

    yield template
    if "postgresql" in made:
        _, admin = _admin()
        _drop_database(admin, made["postgresql"])
        admin.dispose()


@pytest.fixture(params=["duckdb", "postgresql"])
def reference_warehouse_url(request, tmp_path: Path, reference_templates):
    """A warehouse (on both engines) that already holds the reference data, geography and denominators."""
    import shutil

    if request.param == "duckdb":
        target = tmp_path / "warehouse.duckdb"
        shutil.copy(reference_templates("duckdb"), target)
        yield f"duckdb:///{target}"
    else:
        with _fresh_database(reference_templates("postgresql")) as url:
            yield url


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request, tmp_path: Path):
    """The same test on both warehouses."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        yield request.getfixturevalue("postgres_database")


@pytest.fixture
def warehouse(warehouse_url):
    from kpr_pipeline.warehouse import Warehouse

    w = Warehouse(warehouse_url)
    w.ensure_schema()
    yield w
    w.dispose()


@pytest.fixture
def dagster_instance(tmp_path: Path):
    """A real SQLite-backed Dagster instance in a temporary DAGSTER_HOME, with the embedded deploy config."""
    import shutil

    import dagster as dg

    from kpr_pipeline.deployment import LOCAL_INSTANCE_YAML

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory) -> Path:
    """A small synthetic landing zone with faults, shared by the tests that only read it."""
    from kpr_pipeline.synth.generator import GenerateOptions, generate

    out = tmp_path_factory.mktemp("landing")
    generate(GenerateOptions(out=out, seed=7, scale=0.0005, start="2017-01", end="2018-02", defects=0.02,
                             progress=False))
    return out


@pytest.fixture(scope="session")
def kuhr_landing_source(tmp_path_factory) -> Path:
    """Three months of KUHR deliveries with faults (copied per test: processing moves quarantined files)."""
    from kpr_pipeline.synth.generator import GenerateOptions, generate

    out = tmp_path_factory.mktemp("kuhr_landing")
    generate(GenerateOptions(out=out, seed=11, scale=0.0005, start="2017-01", end="2017-03", defects=0.03,
                             progress=False))
    return out


def _private_copy(source: Path, tmp_path: Path) -> Path:
    """A test's own copy of a shared landing zone (processing moves quarantined files)."""
    import shutil

    target = tmp_path / "landing"
    shutil.copytree(source, target)
    return target


@pytest.fixture
def kuhr_landing(kuhr_landing_source, tmp_path) -> Path:
    return _private_copy(kuhr_landing_source, tmp_path)


@pytest.fixture(scope="session")
def care_landing_source(tmp_path_factory) -> Path:
    """Municipal reports for 2019 with every kind of fault the generator plants (no KUHR, no IPLOS)."""
    from kpr_pipeline.synth.care import CareGenerator
    from kpr_pipeline.synth.output import GroundTruth
    from kpr_pipeline.synth.population import build_population

    out = tmp_path_factory.mktemp("care_landing")
    truth = GroundTruth(out)
    care = CareGenerator(build_population(5, 0.001), 5, out, truth, 0.03)
    care.write_year(2019)
    truth.flush()
    return out


@pytest.fixture
def care_landing(care_landing_source, tmp_path) -> Path:
    return _private_copy(care_landing_source, tmp_path)


@pytest.fixture(scope="session")
def reconciliation_landing_source(tmp_path_factory) -> Path:
    """December 2017 without faults: the 2017 municipal reports and the IPLOS extracts with planted differences."""
    from kpr_pipeline.synth.generator import GenerateOptions, generate

    out = tmp_path_factory.mktemp("reconciliation_landing")
    generate(GenerateOptions(out=out, seed=13, scale=0.002, start="2017-12", end="2017-12", defects=0.0,
                             progress=False))
    return out


@pytest.fixture
def reconciliation_landing(reconciliation_landing_source, tmp_path) -> Path:
    return _private_copy(reconciliation_landing_source, tmp_path)


@pytest.fixture
def iplos_settings(monkeypatch):
    """Settings with the synthetic IPLOS key, as the Dagster assets read them (process settings)."""
    from kpr_pipeline.settings import get_settings

    def use(key: str | None):
        if key is None:
            monkeypatch.delenv("IPLOS_PSEUDONYM_KEY", raising=False)
        else:
            monkeypatch.setenv("IPLOS_PSEUDONYM_KEY", key)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()
