"""The real definitions load, validate, and keep their names (a rename would orphan history)."""

import dagster as dg

from kpr_pipeline.definitions import build_definitions, defs

EXPECTED_ASSETS = {"ref_municipalities", "ref_municipality_changes", "ref_kuhr_takster", "ref_tjenestekoder",
                   "ref_population", "population_denominators", "kuhr_deliveries", "kuhr_treatment_months",
                   "care_reports", "care_completeness", "iplos_extracts", "reconciliation_2017",
                   "kuhr_delivery_completeness", "geography_current", "kuhr_contacts_monthly", "kuhr_contacts_annual",
                   "care_users_annual", "care_users_annual_iplos", "care_gp_contacts", "statistics_publication",
                   "quality_report"}
EXPECTED_CHECKS = {
    ("ref_municipalities", "contract_ref_municipalities"),
    ("ref_municipality_changes", "contract_ref_municipality_changes"),
    ("ref_municipality_changes", "change_weights_sum_to_one"),
    ("ref_municipality_changes", "change_chains_reach_current_codes"),
    ("ref_kuhr_takster", "contract_ref_kuhr_takster"),
    ("ref_tjenestekoder", "contract_ref_tjenestekoder"),
    ("ref_population", "contract_ref_population"),
    ("ref_population", "population_covers_valid_codes"),
    ("population_denominators", "contract_population_current"),
    ("population_denominators", "population_totals_preserved"),
    ("kuhr_deliveries", "contract_kuhr_claims"),
    ("kuhr_deliveries", "contract_kuhr_deliveries"),
    ("kuhr_deliveries", "kuhr_accounting"),
    ("kuhr_deliveries", "kuhr_no_raw_identifier"),
    ("kuhr_deliveries", "kuhr_reject_rate"),
    ("kuhr_deliveries", "kuhr_late_share"),
    ("kuhr_deliveries", "kuhr_gp_without_diagnosis"),
    ("kuhr_deliveries", "kuhr_volume_vs_recent"),
    ("kuhr_deliveries", "kuhr_feed_fresh"),
    ("care_reports", "contract_care_services"),
    ("care_reports", "contract_care_submissions"),
    ("care_reports", "care_accounting"),
    ("care_reports", "care_no_raw_identifier"),
    ("care_completeness", "care_reports_complete"),
    ("care_completeness", "care_reject_rate_by_municipality"),
    ("care_completeness", "care_users_vs_previous_year"),
    ("care_completeness", "care_municipality_users_drop"),
    ("iplos_extracts", "iplos_accounting"),
    ("reconciliation_2017", "reconciliation_national_match_rate"),
    ("reconciliation_2017", "reconciliation_municipalities_below_threshold"),
    ("reconciliation_2017", "reconciliation_totals"),
    ("kuhr_delivery_completeness", "delivery_completeness_adds_up"),
    ("kuhr_contacts_monthly", "totals_consistent"), ("kuhr_contacts_monthly", "regninger_match_claims"),
    ("kuhr_contacts_annual", "totals_consistent"), ("kuhr_contacts_annual", "contract_kuhr_contacts_annual"),
    ("care_users_annual", "totals_consistent"), ("care_users_annual", "contract_care_users_annual"),
    ("care_users_annual_iplos", "totals_consistent"), ("care_gp_contacts", "contract_care_gp_contacts"),
    ("statistics_publication", "no_suppressed_cell_recoverable"),
    ("kuhr_contacts_annual", "national_gp_figures_plausible"),
}


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_snapshot_of_asset_and_check_keys():
    repo = build_definitions().get_repository_def()
    assets = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    checks = {(k.asset_key.to_user_string(), k.name) for k in repo.asset_graph.asset_check_keys}
    assert assets == EXPECTED_ASSETS
    assert checks == EXPECTED_CHECKS
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {
        "reference_job", "kuhr_delivery_job", "kuhr_month_job", "care_year_job", "iplos_job", "reconciliation_job",
        "kuhr_statistics_month_job", "kuhr_year_job", "care_statistics_job", "iplos_statistics_job", "publication_job",
        "quality_report_job", "kuhr_freshness_job"}
    assert {s.name for s in repo.sensor_defs} == {"kuhr_delivery_sensor", "kuhr_month_sensor", "care_report_sensor",
                                                  "iplos_extract_sensor", "run_failure_alerts",
                                                  "check_failure_alerts", "quality_report_after_runs",
                                                  "default_automation_condition_sensor"}  # reconciliation_2017 (eager)
    assert {s.name for s in repo.schedule_defs} == {"care_deadline_schedule", "kuhr_catch_up_sweep",
                                                    "kuhr_months_catch_up_sweep", "care_catch_up_sweep",
                                                    "iplos_catch_up_sweep", "monthly_publication_schedule",
                                                    "kuhr_freshness_schedule"}
    partitions = {k.to_user_string(): repo.asset_graph.get(k).partitions_def for k in repo.asset_graph.get_all_asset_keys()}
    assert partitions["kuhr_deliveries"].get_first_partition_key() == "2016-07-01"
    assert partitions["kuhr_treatment_months"].get_first_partition_key() == "2016-07-01"
    assert partitions["care_reports"].get_first_partition_key() == "2017"
    assert partitions["care_completeness"] == partitions["care_reports"]
    assert partitions["iplos_extracts"].get_partition_keys() == [str(y) for y in range(2007, 2018)]
    assert partitions["kuhr_contacts_monthly"] == partitions["kuhr_treatment_months"]
    assert partitions["kuhr_contacts_annual"].get_first_partition_key() == "2016"
    assert partitions["care_users_annual"] == partitions["care_reports"] == partitions["care_gp_contacts"]
    assert partitions["care_users_annual_iplos"] == partitions["iplos_extracts"]


def test_schedules_are_on_by_default_in_production_only():
    from kpr_pipeline.settings import Settings

    key = "k" * 40
    for env, expected in (("development", dg.DefaultScheduleStatus.STOPPED),
                          ("production", dg.DefaultScheduleStatus.RUNNING)):
        settings = Settings.from_env({"KPR_ENV": env, "KPR_PSEUDONYM_KEY": key})
        for schedule in build_definitions(settings).get_repository_def().schedule_defs:
            assert schedule.default_status == expected, schedule.name


def test_every_warehouse_writer_is_in_the_warehouse_pool():
    from kpr_pipeline.defs.resources import WAREHOUSE_POOL

    repo = build_definitions().get_repository_def()
    for key in repo.asset_graph.get_all_asset_keys():
        node = repo.asset_graph.get(key)
        assert node.pools == {WAREHOUSE_POOL}, key
