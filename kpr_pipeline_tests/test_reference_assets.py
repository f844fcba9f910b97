"""Reference assets materialised with real Dagster runs on both warehouses."""

import shutil

import dagster as dg
import pytest
import sqlalchemy as sa

from kpr_pipeline.definitions import build_definitions
from kpr_pipeline.settings import Settings


def _run(defs, instance, selection=None):
    job = defs.resolve_job_def("reference_job")
    return job.execute_in_process(instance=instance, raise_on_error=False, asset_selection=selection)


@pytest.mark.heavy(minutes=1)
def test_reference_assets_load_and_pass_their_checks(warehouse_url, dagster_instance):
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url}))
    result = _run(defs, dagster_instance)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 10 and all(e.passed for e in evaluations)
    warehouse = defs.resources["warehouse"].get()
    assert warehouse.scalar("SELECT COUNT(*) FROM ref_municipalities") == 847
    assert warehouse.scalar("SELECT COUNT(*) FROM ref_municipality_changes") == 491
    assert warehouse.scalar("SELECT SUM(persons) FROM ref_population WHERE year = 2020 AND sex = 'T'") == 5_367_580
    # Materialising again replaces, never duplicates.
    assert _run(defs, dagster_instance, [dg.AssetKey("ref_municipalities")]).success
    assert warehouse.scalar("SELECT COUNT(*) FROM ref_municipalities") == 847
    records = dagster_instance.fetch_materializations(dg.AssetKey("ref_population"), limit=1).records
    assert records[0].asset_materialization.metadata["rows"].value == 939_902
    # Denominators on current borders: the 2020 total survives the mapping; later years are imputed.
    assert warehouse.scalar("SELECT SUM(persons) FROM population_current WHERE year = 2020 AND sex = 'T'") == 5_367_580
    assert warehouse.scalar("SELECT MIN(year) FROM population_current WHERE imputed") == 2023
    assert warehouse.scalar("SELECT COUNT(DISTINCT kommunenummer) FROM population_current WHERE year = 2017") == 357


def test_a_broken_change_table_fails_the_blocking_checks(warehouse_url, dagster_instance):
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url}))
    selection = [dg.AssetKey("ref_municipalities"), dg.AssetKey("ref_municipality_changes")]
    assert _run(defs, dagster_instance, selection).success
    warehouse = defs.resources["warehouse"].get()
    with warehouse.begin() as conn:  # a chain that ends in a code that never existed, and weights that no longer sum to 1
        conn.execute(sa.text("UPDATE ref_municipality_changes SET new_code = '0999' WHERE old_code = '1601'"))
        conn.execute(sa.text("UPDATE ref_municipality_changes SET weight = 0.4 WHERE old_code = '1850' AND new_code = '1806'"))
    checks = defs.resolve_job_def("reference_job")
    from kpr_pipeline.defs.reference.checks import change_chains_reach_current_codes, change_weights_sum_to_one

    context = dg.build_asset_check_context(resources={"warehouse": defs.resources["warehouse"]})
    chains = change_chains_reach_current_codes(context)
    weights = change_weights_sum_to_one(context)
    assert checks is not None
    assert not chains.passed and "1601" in chains.metadata["broken_chains"].value
    assert not weights.passed and weights.metadata["codes_with_bad_weights"].value == ["1850"]


def test_postgres_backed_dagster_instance(postgres_database, tmp_path, monkeypatch):
    """deploy/dagster.yaml: run and event storage in PostgreSQL, exercised with a real run."""
    from kpr_pipeline.deployment import PRODUCTION_INSTANCE_YAML

    url = sa.engine.make_url(postgres_database)
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USER", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)
    home = tmp_path / "pg_home"
    home.mkdir()
    shutil.copy(PRODUCTION_INSTANCE_YAML, home / "dagster.yaml")
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": postgres_database}))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = _run(defs, instance, [dg.AssetKey("ref_kuhr_takster"), dg.AssetKey("ref_tjenestekoder")])
        assert result.success
        assert instance.get_run_by_id(result.run_id).is_success
    engine = sa.create_engine(postgres_database.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM runs")).scalar() >= 1  # Dagster's own tables
        assert conn.execute(sa.text("SELECT COUNT(*) FROM ref_kuhr_takster")).scalar() == 68
    engine.dispose()


@pytest.mark.parametrize("contract", ["ref_municipalities"])
def test_contract_validation_reports_counts_never_values(contract):
    import pandas as pd

    from kpr_pipeline.domain import reference
    from kpr_pipeline.quality.contracts import load_contract
    from kpr_pipeline.quality.gx import validate_frame

    frame = reference.municipalities().copy()
    frame.loc[0, "code"] = "01819012345"  # an identifier-shaped value must not appear in the result
    frame.loc[1, "code"] = frame.loc[2, "code"]
    outcome = validate_frame(frame, load_contract(contract))
    assert not outcome.success
    failed = {(o.expectation, o.column): o.unexpected_count for o in outcome.failed}
    assert failed[("expect_column_values_to_match_regex", "code")] == 1
    assert failed[("expect_column_values_to_be_unique", "code")] == 2
    assert "01819012345" not in str(outcome.metadata())
    assert validate_frame(pd.DataFrame(reference.municipalities()), load_contract(contract)).success
