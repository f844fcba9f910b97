"""Statistics computed in the warehouse, through the real jobs, on DuckDB and PostgreSQL."""

import json
import dagster as dg
import pandas as pd
import pytest

from kpr_pipeline.definitions import build_definitions
from kpr_pipeline.defs.kuhr.sensors import ONLY_NEW
from kpr_pipeline.defs.reference.assets import geography_current
from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.settings import Settings
from kpr_pipeline.statistics import kuhr_contacts

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
MONTHLY_KEY = dg.AssetKey("kuhr_contacts_monthly")
MONTHLY = dg.AssetSelection.assets(MONTHLY_KEY)


MONTHS = ("2017-01-01", "2017-03-01")


def _kuhr_statistics(url, landing, instance):
    """The KUHR deliveries of the landing zone, their months and years, as the jobs run them."""
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": url, "KPR_LANDING_DIR": str(landing)}))
    deliveries = defs.resolve_job_def("kuhr_delivery_job").execute_in_process(
        instance=instance, run_config=ONLY_NEW, tags=dict(zip(RANGE, ("2017-01-01", "2017-03-31"))))
    assert deliveries.success
    # declarative automation (as the daemon evaluates it each tick) asks for exactly the statistics months that
    # the deliveries touched; the geography they are mapped with is materialised in this instance first
    assert dg.materialize([geography_current], resources={"warehouse": WarehouseResource(url=url)},
                          instance=instance).success
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=MONTHLY)
    months = defs.resolve_job_def("kuhr_month_job").execute_in_process(instance=instance, tags=dict(zip(RANGE, MONTHS)))
    assert months.success
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=MONTHLY,
                                                   cursor=baseline.cursor)
    assert automation.get_requested_partitions(MONTHLY_KEY) == {"2017-01-01", "2017-02-01", "2017-03-01"}
    contacts = defs.resolve_job_def("kuhr_statistics_month_job").execute_in_process(
        instance=instance, tags=dict(zip(RANGE, MONTHS)))
    assert contacts.success
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=MONTHLY,
                                                   cursor=automation.cursor)
    assert automation.total_requested == 0  # nothing else is recomputed
    years = defs.resolve_job_def("kuhr_year_job").execute_in_process(
        instance=instance, tags=dict(zip(RANGE, ("2017", "2017"))))
    assert years.success
    checks = {e.check_name: e for run in (months, contacts, years) for e in run.get_asset_check_evaluations()}
    return defs, checks


@pytest.fixture
def kuhr_statistics(reference_warehouse_url, kuhr_landing, dagster_instance):
    defs, checks = _kuhr_statistics(reference_warehouse_url, kuhr_landing, dagster_instance)
    return defs, checks, defs.resources["warehouse"].get()


def _delivery_triangle(w) -> None:
    table = w.query("SELECT * FROM kuhr_delivery_completeness ORDER BY treatment_month, delay_months")
    assert len(table) == 3 * 7  # every month of the run, every delay, zero-filled
    claims = w.query("SELECT behandlingsmaaned, mottatt_dato FROM kuhr_claims WHERE NOT kreditering AND NOT credited "
                     "AND behandlingsmaaned BETWEEN :a AND :b", a=MONTHS[0], b=MONTHS[1])
    bm, mottatt = pd.to_datetime(claims["behandlingsmaaned"]), pd.to_datetime(claims["mottatt_dato"])
    delay = ((mottatt.dt.year * 12 + mottatt.dt.month) - (bm.dt.year * 12 + bm.dt.month)).clip(upper=6)
    expected = pd.DataFrame({"m": bm.dt.date, "d": delay}).value_counts().to_dict()
    got = {(pd.Timestamp(r.treatment_month).date(), int(r.delay_months)): int(r.regninger)
           for r in table.itertuples() if r.regninger}
    assert got == expected
    for _, month in table.groupby("treatment_month"):
        shares = month["share_of_total"]
        assert shares.is_monotonic_increasing and abs(shares.iloc[-1] - 1.0) < 1e-9
    assert table["regninger"].sum() == len(claims)


def _expected_claims(w) -> pd.DataFrame:
    """Counted regninger with the unit each is counted in (as the geography table says), recomputed in pandas."""
    claims = w.query("SELECT pid, bostedskommune, tjeneste, kontakttype, is_contact, kjonn, fodselsaar, "
                     "behandlingsmaaned FROM kuhr_claims WHERE NOT kreditering AND NOT credited")
    claims["year"] = pd.to_datetime(claims["behandlingsmaaned"]).dt.year
    units = w.query("SELECT year, code, unit, county FROM geography_code_units")
    claims = claims.merge(units, left_on=["year", "bostedskommune"], right_on=["year", "code"], how="left")
    age = claims["year"] - claims["fodselsaar"]
    bounds = [-1000, 5, 15, 19, 29, 39, 49, 66, 79, 89, 1000]
    labels = ["0-5", "6-15", "16-19", "20-29", "30-39", "40-49", "50-66", "67-79", "80-89", "90+"]
    claims["age_group"] = pd.cut(age, bounds, labels=labels).astype(str)
    return claims


@pytest.mark.heavy(minutes=2)
def test_kuhr_statistics_count_every_regning_once_on_current_borders(kuhr_statistics, dagster_instance):
    defs, checks, w = kuhr_statistics
    for name in ("totals_consistent", "regninger_match_claims", "contract_kuhr_contacts_annual",
                 "delivery_completeness_adds_up", "national_gp_figures_plausible"):
        assert checks[name].passed, name
    _delivery_triangle(w)
    claims = _expected_claims(w)
    split = set(w.query("SELECT DISTINCT unit FROM geography_split_weights")["unit"])
    plain = claims[~claims["unit"].isin(split)]
    month = pd.Timestamp("2017-02-01")
    feb = plain[pd.to_datetime(plain["behandlingsmaaned"]) == month]
    table = w.frame("SELECT * FROM kuhr_contacts_monthly WHERE treatment_month = :m", m=month.date())
    table = table.set_index(["kommunenummer", "tjeneste", "kontakttype", "kjonn", "age_group"])
    keys = ["unit", "tjeneste", "kontakttype", "kjonn", "age_group"]
    leaves = feb.assign(kontakttype=feb["kontakttype"].fillna("ingen"), pid_contact=feb["pid"].where(feb["is_contact"]))
    expected = leaves.groupby(keys).agg(regninger=("pid", "size"), contacts=("is_contact", "sum"),
                                        patients=("pid_contact", "nunique"))
    got = table.reset_index().rename(columns={"kommunenummer": "unit"}).set_index(keys)
    got = got.loc[expected.index, ["regninger", "contacts", "patients"]].astype("int64")
    pd.testing.assert_frame_equal(got, expected.astype("int64"))
    assert int(table["regninger"].sum()) > 0 and len(expected) > 100
    # person counts are distinct at every level: a county's patients are not the sum of its municipalities'
    county = feb[feb["county"] == "46"]
    row = table.loc[("4600", "FASTLEGE", "konsultasjon", "T", "T")]
    assert int(row["patients"]) == county.loc[county["is_contact"] & (county["kontakttype"] == "konsultasjon") &
                                              (county["tjeneste"] == "FASTLEGE"), "pid"].nunique()
    national = table.xs(("0000", "T", "T"), level=["kommunenummer", "kjonn", "age_group"])
    all_feb = claims[pd.to_datetime(claims["behandlingsmaaned"]) == month]
    assert int(national["regninger"].sum()) == len(all_feb)

    annual = w.query("SELECT * FROM kuhr_contacts_annual WHERE year = 2017 AND kommunenummer = '0000' AND "
                     "kjonn = 'T' AND age_group = 'T'").set_index("tjeneste")
    gp = annual.loc["FASTLEGE"]
    year = claims[(claims["year"] == 2017) & (claims["tjeneste"] == "FASTLEGE")]
    consultations = year[year["is_contact"] & (year["kontakttype"] == "konsultasjon")]
    assert int(gp["consultations"]) == len(consultations)
    assert int(gp["patients_consultation"]) == consultations["pid"].nunique()
    population = w.query("SELECT SUM(persons) AS n FROM population_current WHERE year = 2017 AND sex = 'T'")
    assert int(gp["population"]) == int(population["n"].iloc[0])
    assert gp["consultations_per_inhabitant"] == pytest.approx(len(consultations) / int(gp["population"]))
    assert not bool(gp["preliminary"])  # judged on the run date: 2017 is long final
    assert int(w.query("SELECT COUNT(*) AS n FROM kuhr_contacts_annual WHERE year = 2017 AND kjonn = '1' AND "
                       "population IS NOT NULL")["n"].iloc[0]) == 0  # SSB gives 2017 for both sexes only
    empty = w.query("SELECT share_with_contact FROM kuhr_contacts_annual WHERE year = 2017 AND kommunenummer = '9999' "
                    "AND kjonn = 'T' AND age_group = 'T'")
    assert empty["share_with_contact"].isna().all()  # no population: empty, never 0

    # a re-run of one month (as after a late claim or a credit note) recomputes that month only
    before = w.query("SELECT treatment_month, MAX(computed_at) AS at FROM kuhr_contacts_monthly "
                     "GROUP BY treatment_month").set_index("treatment_month")["at"]
    again = defs.resolve_job_def("kuhr_statistics_month_job").execute_in_process(
        instance=dagster_instance, tags=dict(zip(RANGE, ("2017-02-01", "2017-02-01"))))
    assert again.success
    after = w.query("SELECT treatment_month, MAX(computed_at) AS at FROM kuhr_contacts_monthly "
                    "GROUP BY treatment_month").set_index("treatment_month")["at"]
    changed = sorted(str(m)[:10] for m in after.index if after[m] != before[m])
    assert changed == ["2017-02-01"]
    assert w.scalar("SELECT COUNT(*) FROM kuhr_contacts_monthly") == len(before) * w.scalar(
        "SELECT COUNT(*) FROM kuhr_contacts_monthly WHERE treatment_month = '2017-02-01'")  # replaced, not added
    _the_totals_check_finds_planted_mismatches(w)


def _the_totals_check_finds_planted_mismatches(w) -> None:
    """The check reads the non-zero cells first (fast on zero-filled grids); whatever its shape, a planted
    mismatch is found: a county total off by one, a zero total over a part made non-zero, a total made
    non-zero over parts that are all zero. Each is planted in a transaction that is rolled back."""
    import sqlalchemy as sa

    from kpr_pipeline.defs.statistics.checks import TOTALS
    from kpr_pipeline.statistics.consistency import mismatches_sql

    table, _, _, extra, keys, measures, totals = TOTALS["kuhr_contacts_monthly"]
    args = (table, keys, measures, f"treatment_month = :m AND {extra}", totals, "EXTRACT(YEAR FROM treatment_month)")
    month = pd.Timestamp("2017-02-01").date()
    leaf = ("kjonn = '2' AND age_group = '0-5' AND tjeneste = 'FYSIOTERAPI' AND kontakttype = 'ingen' AND "
            "treatment_month = :m")
    municipality = ("kommunenummer NOT LIKE '__00' AND kommunenummer NOT IN ('9999', '2100', '2200') AND NOT "
                    "split_suppressed AND kommunenummer NOT IN (SELECT current_code FROM geography_split_weights)")
    plants = {
        "a county total off by one": f"UPDATE {table} SET regninger = regninger + 1 WHERE kommunenummer = :c AND "
                                     "kjonn = 'T' AND age_group = 'T' AND tjeneste = 'FASTLEGE' AND kontakttype = "
                                     "'konsultasjon' AND treatment_month = :m",
        "a part made non-zero under a zero total": f"UPDATE {table} SET regninger = 3 WHERE kommunenummer = :k "
                                                   f"AND {leaf}",
        "a total made non-zero over zero parts": f"UPDATE {table} SET regninger = 7 WHERE kommunenummer = :c AND "
                                                 f"{leaf}",
    }
    for name, plant in plants.items():
        with w.engine.connect() as conn:
            found = lambda sql: {(r[0], r[1]) for r in conn.execute(sa.text(sql), {"m": month}).all()}  # noqa: E731
            assert found(mismatches_sql(*args)) == found(mismatches_sql(*args, candidates=True)) == set()
            code = conn.execute(sa.text(f"SELECT MIN(kommunenummer) FROM {table} WHERE {leaf} AND regninger = 0 AND "
                                        f"{municipality}"), {"m": month}).all()[0][0]
            county = code[:2] + "00"
            conn.execute(sa.text(plant), {"m": month, "k": code, "c": county})  # in the connection's transaction
            assert ("kommunenummer", county) in found(mismatches_sql(*args)), name
            assert ("kommunenummer", county) in found(mismatches_sql(*args, candidates=True)), name
            conn.rollback()


@pytest.mark.heavy(minutes=2)
def test_care_statistics_and_the_publication(reference_warehouse_url, reconciliation_landing, dagster_instance,
                                            iplos_settings, tmp_path, monkeypatch):
    """2017 municipal reports, IPLOS 2017 and December's KUHR deliveries through the jobs; then the
    publication, attacked by subtraction, and scanned for identifiers."""
    from kpr_pipeline.defs.care.sensors import only_new
    from kpr_pipeline.defs.iplos.sensors import ONLY_NEW as IPLOS_ONLY_NEW
    from kpr_pipeline.defs.statistics.schedules import publication_config
    from kpr_pipeline.statistics import attack, publication
    from kpr_pipeline.synth.iplos import SYNTHETIC_IPLOS_KEY
    from kpr_pipeline_tests.leak_scan import file_leaks

    output = tmp_path / "output"
    monkeypatch.setenv("KPR_OUTPUT_DIR", str(output))
    iplos_settings(SYNTHETIC_IPLOS_KEY)
    defs = build_definitions(Settings.from_env({"KPR_WAREHOUSE_URL": reference_warehouse_url,
                                                "KPR_LANDING_DIR": str(reconciliation_landing)}))

    def run(job, first=None, last=None, config=None):
        tags = dict(zip(RANGE, (first, last))) if first else None
        result = defs.resolve_job_def(job).execute_in_process(instance=dagster_instance, tags=tags, run_config=config)
        assert result.success, job
        return {e.check_name: e for e in result.get_asset_check_evaluations()}

    run("kuhr_delivery_job", "2017-12-01", "2018-01-31", ONLY_NEW)
    run("kuhr_month_job", "2017-12-01", "2017-12-01")
    run("care_year_job", "2017", "2017", only_new())
    run("iplos_job", "2017", "2017", IPLOS_ONLY_NEW)
    run("reconciliation_job")
    checks = run("care_statistics_job", "2017", "2017")
    checks.update(run("iplos_statistics_job", "2017", "2017"))
    assert all(c.passed for c in checks.values()), [n for n, c in checks.items() if not c.passed]

    w = defs.resources["warehouse"].get()
    services = w.query("SELECT s.pid, s.tjenestekode, s.fra_dato, s.til_dato, t.gruppe FROM care_services s "
                       "JOIN ref_tjenestekoder t ON t.kode = s.tjenestekode WHERE s.reporting_year = 2017")
    national = w.query("SELECT * FROM care_users_annual WHERE year = 2017 AND kommunenummer = '0000' AND kjonn = 'T' "
                       "AND age_group = 'T' AND tjenestekode IS NULL").set_index(["source", "tjenestegruppe"])
    end = pd.Timestamp("2017-12-31")
    til = pd.to_datetime(services["til_dato"])
    running = (pd.to_datetime(services["fra_dato"]) <= end) & (til.isna() | (til >= end))
    for group, rows in services.groupby("gruppe"):
        cell = national.loc[("KPR", group)]
        assert int(cell["users_during_year"]) == rows["pid"].nunique()  # once per group, however many decisions
        assert int(cell["users_dec31"]) == rows.loc[running[rows.index], "pid"].nunique()
    bridge = w.query("SELECT COUNT(*) AS n, SUM(users_during_year) AS users FROM care_users_annual WHERE year = 2017 "
                     "AND source = 'IPLOS' AND kommunenummer = '0000' AND kjonn = 'T' AND age_group = 'T'")
    assert int(bridge["users"].iloc[0]) > 0  # 2017 is also published from IPLOS, as the bridge row

    claims = w.query("SELECT pid, regning_id FROM kuhr_claims WHERE is_contact AND NOT kreditering AND NOT credited "
                     "AND tjeneste IN ('FASTLEGE', 'LEGEVAKT') AND behandlingsmaaned BETWEEN '2017-01-01' "
                     "AND '2017-12-31'")
    gp = w.query("SELECT * FROM care_gp_contacts WHERE year = 2017 AND kommunenummer = '0000'").set_index(
        "tjenestegruppe")
    for group, rows in services.groupby("gruppe"):
        users = set(rows["pid"])
        contacts = claims[claims["pid"].isin(users)]
        assert int(gp.loc[group, "users"]) == len(users)
        assert int(gp.loc[group, "users_with_gp_contact"]) == contacts["pid"].nunique()
        assert gp.loc[group, "gp_contacts_per_user"] == pytest.approx(len(contacts) / len(users))
    assert int(gp["users_with_gp_contact"].sum()) > 0

    checks = run("publication_job", config=publication_config("2017-12"))
    assert checks["no_suppressed_cell_recoverable"].passed
    directory = output / "publication"
    suppressed = 0
    for pub in publication.PUBLICATIONS:
        table = pub.rules.table
        meta = json.loads((directory / f"{table}.json").read_text(encoding="utf-8"))
        assert {"definitions", "source_data", "split_policy", "suppression_threshold", "preliminary",
                "run_time"} <= set(meta)
        assert meta["split_policy"] == "weight" and meta["suppression_threshold"] == 5
        result = attack.attack_file(directory / f"{table}.csv", pub.rules)
        assert result.recovered == 0, table
        suppressed += result.suppressed
    assert suppressed > 0  # small numbers are there to be protected, and were
    header = (directory / "care_gp_contacts.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(";")[:3] == ['"year"', '"kommunenummer"', '"tjenestegruppe"'] and "users_suppressed" in header
    gp_published = pd.read_csv(directory / "care_gp_contacts.csv", sep=";", dtype={"kommunenummer": str})
    small = gp_published[gp_published["users_suppressed"]]
    assert small["users"].isna().all() and small["gp_contacts_per_user"].isna().all()
    assert file_leaks(output) == {}


def test_national_gp_figures_are_judged_per_patient_on_complete_years():
    national = pd.DataFrame({"year": [2021, 2022, 2023, 2024], "consultations": [4100, 3000, 830, 900],
                             "patients_consultation": [1000, 1000, 200, 100], "months": [12, 12, 12, 3]})
    bad, not_judged = kuhr_contacts.implausible_gp_years(national)
    assert bad == {2022: 3.0} and not_judged == [2024]  # 4.1 and 4.15 are close to 3.0 / 0.72; 2024 is partial
    no_patients = kuhr_contacts.implausible_gp_years(national.assign(patients_consultation=0))[0]
    assert no_patients == {2021: None, 2022: None, 2023: None}  # consultations without patients: implausible
