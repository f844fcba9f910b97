"""The real definitions load, validate, and keep their names (a rename would orphan history)."""

import dagster as dg

from kpr_pipeline.definitions import build_definitions, defs

EXPECTED_ASSETS = {"ref_municipalities", "ref_municipality_changes", "ref_kuhr_takster", "ref_tjenestekoder",
                   "ref_population"}
EXPECTED_CHECKS = {
    ("ref_municipalities", "contract_ref_municipalities"),
    ("ref_municipality_changes", "contract_ref_municipality_changes"),
    ("ref_municipality_changes", "change_weights_sum_to_one"),
    ("ref_municipality_changes", "change_chains_reach_current_codes"),
    ("ref_kuhr_takster", "contract_ref_kuhr_takster"),
    ("ref_tjenestekoder", "contract_ref_tjenestekoder"),
    ("ref_population", "contract_ref_population"),
    ("ref_population", "population_covers_valid_codes"),
}


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_snapshot_of_asset_and_check_keys():
    repo = build_definitions().get_repository_def()
    assets = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    checks = {(k.asset_key.to_user_string(), k.name) for k in repo.asset_graph.asset_check_keys}
    assert assets == EXPECTED_ASSETS
    assert checks == EXPECTED_CHECKS
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {"reference_job"}


def test_every_warehouse_writer_is_in_the_warehouse_pool():
    from kpr_pipeline.defs.resources import WAREHOUSE_POOL

    repo = build_definitions().get_repository_def()
    for key in repo.asset_graph.get_all_asset_keys():
        node = repo.asset_graph.get(key)
        assert node.pools == {WAREHOUSE_POOL}, key
