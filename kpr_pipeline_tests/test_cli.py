"""The command line as a user runs it."""

import os
import shutil
import subprocess
import sys

import pytest

from kpr_pipeline.cli import main


@pytest.mark.heavy(minutes=3)
def test_generate_then_run_on_the_embedded_defaults(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("KPR_OUTPUT_DIR", raising=False)
    assert main(["generate", "--out", "data/landing", "--scale", "0.0003", "--start", "2017-01", "--end", "2017-02",
                 "--quiet"]) == 0
    assert (tmp_path / "data/landing/kuhr").is_dir()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out.split("jobs:")[1].splitlines()[0]
    assert "KUHR: 64 new deliveries ready" in out and "KUHR files loaded: 64" in out
    loaded = [line for line in out.splitlines() if "KUHR rows loaded" in line]
    assert main(["run"]) == 0  # a second run finds nothing new and changes nothing
    again = capsys.readouterr().out
    assert "KUHR: 0 new deliveries ready" in again and "KUHR files loaded: 64" in again
    assert "reference data unchanged since its last load: reference_job skipped" in again
    assert "statistics unchanged since the last publication: publication_job skipped" in again
    assert (tmp_path / "data/output/publication/kuhr_contacts_monthly.csv").exists()
    assert loaded == [line for line in again.splitlines() if "KUHR rows loaded" in line]
    assert (tmp_path / "data/warehouse.duckdb").exists()
    assert (tmp_path / "data/dagster_home/dagster.yaml").exists()


@pytest.mark.heavy(minutes=5)
def test_run_takes_in_municipal_reports_and_a_steward_accepts_a_gap(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("KPR_OUTPUT_DIR", raising=False)
    assert main(["generate", "--out", "data/landing", "--scale", "0.0003", "--start", "2017-12", "--end", "2017-12",
                 "--defects", "0.02", "--quiet"]) == 0
    # the IPLOS years are run end to end by test_generate_then_run_on_the_embedded_defaults; here they would
    # only add eleven years of statistics to every publication
    shutil.rmtree(tmp_path / "data/landing/iplos")
    reports = len(list((tmp_path / "data/landing/helse_omsorg/2017").glob("*.xml")))
    assert reports > 400
    assert main(["run"]) == 0  # missing municipalities are reported, they do not fail the run
    out = capsys.readouterr().out
    assert f"KPR-helse og omsorg: {reports} new municipal reports ready" in out
    assert "care_year_job [2017..2017]" in out and "0 failed" in out.split("jobs:")[1].splitlines()[0]
    missing = int(out.split("municipalities missing for 2017: ")[1].split()[0])
    assert missing > 0
    from kpr_pipeline.warehouse import Warehouse
    from kpr_pipeline_tests.leak_scan import file_leaks, warehouse_leaks

    # No identifier outside the landing zone: warehouse, Dagster instance (event log, runs), output, the
    # quarantine's reason files, what the run printed. The landing zone itself holds them by design.
    assert warehouse_leaks(Warehouse("duckdb:///data/warehouse.duckdb")) == {}
    assert file_leaks(tmp_path / "data/dagster_home") == {}
    reasons = {p: n for p, n in file_leaks(tmp_path / "data/landing/quarantine").items() if p.endswith(".reason.json")}
    assert reasons == {} and list((tmp_path / "data/landing/quarantine").rglob("*.reason.json"))
    assert file_leaks(tmp_path / "data/landing") != {}  # the scanner does find identifiers where they are
    from kpr_pipeline.domain.identifiers import identifiers_in_texts

    assert identifiers_in_texts([out])[1] == 0
    from kpr_pipeline_tests.care_helpers import make_identity

    with Warehouse("duckdb:///data/warehouse.duckdb").begin() as conn:  # the scanner finds a planted one
        conn.exec_driver_sql(f"UPDATE care_rejected_rows SET message = 'x {make_identity(3)} y' "
                             "WHERE rowid = (SELECT MIN(rowid) FROM care_rejected_rows)")
    assert warehouse_leaks(Warehouse("duckdb:///data/warehouse.duckdb")) == {"care_rejected_rows": 1}
    with Warehouse("duckdb:///data/warehouse.duckdb").begin() as conn:
        conn.exec_driver_sql("UPDATE care_rejected_rows SET message = 'restored'")
    codes = Warehouse("duckdb:///data/warehouse.duckdb").query(
        "SELECT kommunenummer FROM care_completeness WHERE status IN ('missing', 'quarantined')")["kommunenummer"]
    assert main(["accept-gap", "--year", "2017", "--kommune", codes[0], "--by", "Kari Steward",
                 "--reason", "system change, agreed by letter"]) == 0
    assert f"{missing - 1} municipalities still missing" in capsys.readouterr().out
    assert main(["accept-gap", "--year", "2017", "--kommune", "0101x", "--by", "x", "--reason", "y"]) == 2

    def preliminary_flags():
        return set(Warehouse("duckdb:///data/warehouse.duckdb").query(
            "SELECT DISTINCT preliminary FROM care_users_annual WHERE year = 2017 AND source = 'KPR' "
            "UNION SELECT DISTINCT preliminary FROM care_gp_contacts WHERE year = 2017")["preliminary"])
    assert preliminary_flags() == {True}
    from kpr_pipeline.quality.completeness import evaluate

    for code in evaluate(Warehouse("duckdb:///data/warehouse.duckdb"), 2017).missing:
        # every gap accepted: the year is final, and so are its statistics
        assert main(["accept-gap", "--year", "2017", "--kommune", code, "--by", "Kari Steward",
                     "--reason", "system change"]) == 0
    assert "2017 is now final" in capsys.readouterr().out.splitlines()[-1]
    assert preliminary_flags() == {False}
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "KPR-helse og omsorg: 0 new municipal reports ready" in out
    assert "publication_job skipped" not in out  # the flags changed: published again
    # A reference table changed behind the pipeline's back is reloaded by the next run.
    import dagster as dg

    from kpr_pipeline.pipeline_run import reference_is_current
    from kpr_pipeline.settings import Settings

    warehouse = Warehouse("duckdb:///data/warehouse.duckdb")
    with dg.DagsterInstance.get() as instance:
        assert reference_is_current(instance, warehouse, Settings.from_env({}))
        assert not reference_is_current(instance, warehouse, Settings.from_env({"KPR_SPLIT_POLICY": "rollup"}))
        with warehouse.begin() as conn:
            conn.exec_driver_sql("DELETE FROM ref_tjenestekoder WHERE kode = 29")
        assert not reference_is_current(instance, warehouse, Settings.from_env({}))


def test_a_wrong_setting_stops_the_command_with_one_sentence(tmp_path):
    env = {**os.environ, "KPR_ENV": "production", "KPR_PSEUDONYM_KEY": ""}
    proc = subprocess.run([sys.executable, "-m", "kpr_pipeline.cli", "run", "--landing", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "kpr-pipeline: KPR_PSEUDONYM_KEY is required when KPR_ENV=production."


@pytest.mark.parametrize("args, message", [
    (["generate", "--out", "x", "--start", "2017-13"], "YYYY-MM"),
    (["generate", "--out", "x", "--scale", "2"], "--scale"),
])
def test_bad_generator_arguments(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err
