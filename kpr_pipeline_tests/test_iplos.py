"""IPLOS extracts and the 2017 reconciliation, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from kpr_pipeline.definitions import build_definitions
from kpr_pipeline.domain.landing import IPLOS_FORMAT
from kpr_pipeline.ingest.care import process_report, report_files
from kpr_pipeline.ingest.iplos import process_extract, ready_manifests
from kpr_pipeline.quality import reconciliation
from kpr_pipeline.settings import Settings
from kpr_pipeline.synth.iplos import SYNTHETIC_IPLOS_KEY
from kpr_pipeline.synth.output import manifest_for, open_gzip

KEY = "test-key"


def _truth(landing: Path, dataset: str) -> list[dict]:
    lines = (landing / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()
    return [t for t in map(json.loads, lines) if t["dataset"] == dataset]


def _load_2017(warehouse, landing: Path, iplos_key=SYNTHETIC_IPLOS_KEY) -> None:
    for path in report_files(landing, {2017}):
        process_report(warehouse, landing, path, False, KEY, iplos_key)
    for manifest in ready_manifests(landing):
        process_extract(warehouse, landing, manifest)


def test_every_planted_iplos_fault_is_caught(warehouse, small_landing, tmp_path):
    import shutil

    landing = tmp_path / "landing"
    shutil.copytree(small_landing / "iplos", landing / "iplos")
    results = {m.name: process_extract(warehouse, landing, m) for m in ready_manifests(landing)}
    truth = _truth(small_landing, "iplos")
    quarantined_years = {t["reporting_year"] for t in truth if t["level"] == "file"}
    expected_rows = {(t["reporting_year"], t["row_number"], t["reason"]) for t in truth
                     if t["level"] == "row" and t["reporting_year"] not in quarantined_years}
    rejected = warehouse.query("SELECT reporting_year, row_number, reasons FROM iplos_rejected_rows")
    found = {(r.reporting_year, r.row_number, code) for r in rejected.itertuples() for code in r.reasons.split(",")}
    assert found == expected_rows
    expected_files = {(f"iplos_{t['reporting_year']}.manifest.json", t["reason"]) for t in truth if t["level"] == "file"}
    assert {(n, r.reason) for n, r in results.items() if r.status == "quarantined"} == expected_files
    extracts = warehouse.query("SELECT * FROM iplos_extracts WHERE status = 'loaded'")
    assert (extracts["rows_loaded"] + extracts["rows_rejected"] == extracts["rows_in_file"]).all()
    assert int(extracts["rows_loaded"].sum()) == warehouse.scalar("SELECT COUNT(*) FROM iplos_services")
    assert warehouse.scalar("SELECT COUNT(*) FROM iplos_services WHERE LENGTH(pseudonym) <> 64") == 0


def test_a_redelivered_year_replaces_that_year_only(warehouse, small_landing, tmp_path):
    import shutil

    landing = tmp_path / "landing"
    shutil.copytree(small_landing / "iplos", landing / "iplos")
    for manifest in ready_manifests(landing):
        process_extract(warehouse, landing, manifest)
    before = dict(warehouse.query("SELECT reporting_year, COUNT(*) AS n FROM iplos_services GROUP BY reporting_year")
                  .itertuples(index=False))
    again = [process_extract(warehouse, landing, m) for m in ready_manifests(landing)]  # the same content again
    assert all(r.status == "loaded" for r in again)
    assert dict(warehouse.query("SELECT reporting_year, COUNT(*) AS n FROM iplos_services GROUP BY reporting_year")
                .itertuples(index=False)) == before
    path = landing / "iplos" / "iplos_2015.csv.gz"
    rows = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False).head(10)
    with open_gzip(path) as gz:
        gz.write(rows.to_csv(sep=";", index=False).encode("utf-8"))
    manifest = manifest_for(path, IPLOS_FORMAT, "iplos_2015", "2016-03-01", 10, "2016-03-01T08:00:00+01:00")
    (landing / "iplos" / "iplos_2015.manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    result = process_extract(warehouse, landing, landing / "iplos" / "iplos_2015.manifest.json")
    assert result.rows_loaded + result.rows_rejected == 10
    after = dict(warehouse.query("SELECT reporting_year, COUNT(*) AS n FROM iplos_services GROUP BY reporting_year")
                 .itertuples(index=False))
    assert after[2015] == result.rows_loaded and {y: n for y, n in after.items() if y != 2015} == {
        y: n for y, n in before.items() if y != 2015}


def test_the_reconciliation_recovers_every_planted_difference(warehouse, reconciliation_landing):
    landing = reconciliation_landing
    _load_2017(warehouse, landing)
    result = reconciliation.compute(warehouse)
    truth = _truth(landing, "reconciliation_2017")
    assert {t["kind"] for t in truth} == {"only_kpr", "only_iplos", "start_shift", "hours_change"}
    missing = {t["kommunenummer"] for t in _truth(landing, "helse_omsorg") if t.get("defect") == "missing_reporter"
               and t["reporting_year"] == 2017}
    only_kpr = {t["iplos_pseudonym"] for t in truth if t["kind"] == "only_kpr"}
    only_iplos = {t["iplos_pseudonym"] for t in truth if t["kind"] == "only_iplos"}
    kpr = warehouse.query("SELECT kommunenummer, tjenestekode, iplos_pseudonym AS p, timer_per_uke FROM care_services "
                          "WHERE reporting_year = 2017")
    ipl = warehouse.query("SELECT kommunenummer, tjenestekode, pseudonym AS p FROM iplos_services "
                          "WHERE reporting_year = 2017")
    cells = result.cells[result.cells["kommunenummer"] != reconciliation.NATIONAL].set_index(
        ["kommunenummer", "tjenestekode"])
    # Expected per cell from the ground truth alone: only-KPR persons are the planted ones; only-IPLOS persons
    # are the planted ones and those of municipalities that sent no report to KPR.
    exp_only_kpr = kpr[kpr["p"].isin(only_kpr)].groupby(["kommunenummer", "tjenestekode"])["p"].nunique()
    ipl_only = ipl[ipl["p"].isin(only_iplos) | ipl["kommunenummer"].isin(missing)]
    exp_only_iplos = ipl_only.groupby(["kommunenummer", "tjenestekode"])["p"].nunique()
    got_only_kpr = cells["persons_only_kpr"][cells["persons_only_kpr"] > 0]
    got_only_iplos = cells["persons_only_iplos"][cells["persons_only_iplos"] > 0]
    assert got_only_kpr.astype(int).sort_index().to_dict() == exp_only_kpr.sort_index().to_dict()
    assert got_only_iplos.astype(int).sort_index().to_dict() == exp_only_iplos.sort_index().to_dict()
    # Matched decisions: every KPR decision of a person in both, and their planted differences exactly.
    # (a difference planted in IPLOS under a municipality that sent no report to KPR has nothing to match)
    shifts = pd.DataFrame([t for t in truth if t["kind"] == "start_shift" and t["kommunenummer"] not in missing])
    hours = pd.DataFrame([t for t in truth if t["kind"] == "hours_change" and t["kommunenummer"] not in missing])
    assert len(shifts) and len(hours)
    matched_kpr = kpr[~kpr["p"].isin(only_kpr)]
    exp_matched = matched_kpr.groupby(["kommunenummer", "tjenestekode"]).size()
    assert cells["decisions_matched"][cells["decisions_matched"] > 0].astype(int).sort_index().to_dict() == \
        exp_matched.sort_index().to_dict()
    start_sum = (cells["mean_start_diff_days"].fillna(0) * cells["decisions_matched"]).round(6)
    exp_start = shifts.groupby(["kommunenummer", "tjenestekode"])["kpr_minus_iplos_days"].sum()
    assert start_sum[start_sum != 0].to_dict() == exp_start.astype(float).to_dict()
    hour_pairs = matched_kpr[matched_kpr["timer_per_uke"].notna()].groupby(["kommunenummer", "tjenestekode"]).size()
    hours_sum = (cells["mean_hours_diff"] * hour_pairs.reindex(cells.index)).round(6).fillna(0)
    exp_hours = hours.groupby(["kommunenummer", "tjenestekode"])["kpr_minus_iplos_hours"].sum().round(6)
    assert hours_sum[hours_sum != 0].to_dict() == exp_hours.to_dict()
    assert (cells["mean_end_diff_days"].fillna(0) == 0).all()
    national = result.national
    assert national["persons_only_kpr"] == len(only_kpr)
    assert 0.9 < national["match_rate"] < 1.0
    assert set(result.below_threshold(0.95)) >= missing & set(ipl["kommunenummer"])  # those with IPLOS persons


def test_wrong_key_is_caught_and_missing_key_skips(warehouse_url, reconciliation_landing, dagster_instance,
                                                   iplos_settings):
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url,
                                                "KPR_LANDING_DIR": str(reconciliation_landing)}))
    warehouse = defs.resources["warehouse"].get()
    _load_2017(warehouse, reconciliation_landing, iplos_key="not-the-linkage-key")
    job = defs.resolve_job_def("reconciliation_job")
    iplos_settings("not-the-linkage-key")
    result = job.execute_in_process(instance=dagster_instance, raise_on_error=False)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    national = checks["reconciliation_national_match_rate"]
    assert not national.passed and national.severity == dg.AssetCheckSeverity.ERROR
    assert "IPLOS_PSEUDONYM_KEY is probably wrong" in national.metadata["likely_cause"].value
    assert checks["reconciliation_totals"].passed
    iplos_settings(None)
    skipped = job.execute_in_process(instance=dagster_instance, raise_on_error=False)
    assert skipped.success and not skipped.get_asset_materialization_events()
    assert warehouse.scalar("SELECT COUNT(*) FROM reconciliation_2017") == 0


def test_iplos_through_dagster_sensor_and_the_care_series(warehouse_url, reconciliation_landing, dagster_instance,
                                                          iplos_settings):
    iplos_settings(SYNTHETIC_IPLOS_KEY)
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": warehouse_url,
                                                "KPR_LANDING_DIR": str(reconciliation_landing)}))
    with dg.build_sensor_context(instance=dagster_instance, resources=defs.resources, definitions=defs) as context:
        tick = defs.get_sensor_def("iplos_extract_sensor").evaluate_tick(context)
    assert sorted(r.partition_key for r in tick.run_requests) == [str(y) for y in range(2007, 2018)]
    job = defs.resolve_job_def("iplos_job")
    result = job.execute_in_process(instance=dagster_instance, run_config=tick.run_requests[0].run_config,
                                    tags={"dagster/asset_partition_range_start": "2007",
                                          "dagster/asset_partition_range_end": "2017"})
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    with dg.build_sensor_context(instance=dagster_instance, resources=defs.resources, definitions=defs) as context:
        assert not defs.get_sensor_def("iplos_extract_sensor").evaluate_tick(context).run_requests
    care = defs.resolve_job_def("care_year_job").execute_in_process(
        instance=dagster_instance, partition_key="2017", run_config={"ops": {"care_reports": {"config": {}}}})
    assert care.success
    rec = defs.resolve_job_def("reconciliation_job").execute_in_process(instance=dagster_instance)
    assert rec.success
    checks = {e.check_name: e for e in rec.get_asset_check_evaluations()}
    assert checks["reconciliation_national_match_rate"].passed and checks["reconciliation_totals"].passed
    below = checks["reconciliation_municipalities_below_threshold"]
    assert below.severity == dg.AssetCheckSeverity.WARN and below.metadata["below_threshold"].value
    series = defs.resources["warehouse"].get().query(
        "SELECT year, source, COUNT(*) AS n FROM care_series GROUP BY year, source ORDER BY year, source")
    assert list(zip(series["year"], series["source"]))[-2:] == [(2017, "IPLOS"), (2017, "KPR")]
    assert series["year"].min() == 2007
