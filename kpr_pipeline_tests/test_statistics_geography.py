"""Statistics on current borders, on both warehouses: codes mapped through the real change history, split
municipalities under each policy, county and national rows, zero-filled cells."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from kpr_pipeline.defs.reference.assets import geography_current
from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.statistics import kuhr_contacts
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert

#: (treatment month, bostedskommune as reported, regninger, contacts among them)
CLAIMS = [
    (dt.date(2019, 5, 1), "1850", 11, 11),  # Tysfjord, split 2020 into 1806 Narvik and 1875 Hamarøy (0.5/0.5)
    (dt.date(2019, 5, 1), "5012", 20, 17),  # Snillfjord, split 2020 into 5055/5056/5059 (0.35/0.35/0.3)
    (dt.date(2019, 5, 1), "1806", 3, 3),  # Narvik after its 2020 merger: no split of its own
    (dt.date(2017, 5, 1), "1601", 7, 7),  # Trondheim in 2017, 5001 since the 2018 Trøndelag merger
    (dt.date(2023, 5, 1), "1507", 9, 9),  # Ålesund, split 2024 into 1508 and 1580
    (dt.date(2023, 5, 1), "9999", 2, 2),  # unknown: its own row, counted nationally only
]


def _claims() -> pd.DataFrame:
    rows, n = [], 0
    for month, code, regninger, contacts in CLAIMS:
        for i in range(regninger):
            n += 1
            rows.append({"regning_id": f"r{n}", "delivery_id": "test", "pid": f"p{code}{i % 4}", "kjonn": "12"[i % 2],
                         "fodselsaar": 1950 + i, "bostedskommune": code, "tjeneste": "FASTLEGE",
                         "behandlingsmaaned": month, "mottatt_dato": month, "kreditering": False, "credited": False,
                         "is_contact": i < contacts, "kontakttype": "konsultasjon" if i < contacts else None,
                         "egenandel": 100.5, "refusjon": 200.25, "late": False, "suspected_double": False})
    return pd.DataFrame(rows)


def _use_policy(monkeypatch, url: str, policy: str, instance) -> Warehouse:
    from kpr_pipeline.settings import get_settings

    monkeypatch.setenv("KPR_SPLIT_POLICY", policy)
    get_settings.cache_clear()
    assert dg.materialize([geography_current], resources={"warehouse": WarehouseResource(url=url)},
                          instance=instance).success
    return Warehouse(url)


def _cells(w: Warehouse, month: dt.date, policy: str) -> pd.DataFrame:
    kuhr_contacts.compute_monthly(w, [month], policy)
    return w.query("SELECT kommunenummer, regninger, contacts, patients, egenandel_sum, split_suppressed "
                   "FROM kuhr_contacts_monthly WHERE treatment_month = :m AND tjeneste = 'FASTLEGE' AND "
                   "kontakttype = 'konsultasjon' AND kjonn = 'T' AND age_group = 'T'", m=month
                   ).set_index("kommunenummer")


@pytest.fixture
def claims_warehouse(reference_warehouse_url):
    w = Warehouse(reference_warehouse_url)
    with w.begin() as conn:
        bulk_insert(conn, "kuhr_claims", _claims())
    yield reference_warehouse_url
    w.dispose()


def test_weight_policy_apportions_splits_and_follows_chains(claims_warehouse, monkeypatch, dagster_instance):
    w = _use_policy(monkeypatch, claims_warehouse, "weight", dagster_instance)
    units = w.query("SELECT year, code, unit, county FROM geography_code_units WHERE code IN ('1850', '1507', '1601', "
                    "'5012') AND year IN (2017, 2019, 2023)").set_index(["year", "code"])
    assert units.loc[(2017, "1601"), "unit"] == "5001"  # the Trøndelag chain
    assert units.loc[(2019, "1850"), "unit"] == "1850" and units.loc[(2023, "1507"), "unit"] == "1507"  # split units
    may19 = _cells(w, dt.date(2019, 5, 1), "weight")
    # 11 contacts of Tysfjord split 0.5/0.5: 5.5 each, the remainder to one of them; Narvik's own 3 added
    assert sorted((int(may19.loc["1806", "contacts"]) - 3, int(may19.loc["1875", "contacts"]))) == [5, 6]
    assert [int(may19.loc[c, "contacts"]) for c in ("5055", "5056", "5059")] == [6, 6, 5]  # 17 by .35/.35/.30
    assert int(may19.loc["1800", "contacts"]) == 14 and int(may19.loc["5000", "contacts"]) == 17
    assert int(may19.loc["0000", "regninger"]) == 31 and int(may19.loc["0000", "contacts"]) == 31
    national = w.query("SELECT kontakttype, regninger, contacts FROM kuhr_contacts_monthly WHERE treatment_month = :m "
                       "AND kommunenummer = '0000' AND tjeneste = 'FASTLEGE' AND kjonn = 'T' AND age_group = 'T'",
                       m=dt.date(2019, 5, 1)).set_index("kontakttype")
    assert int(national.loc["ingen", "regninger"]) == 3 and int(national.loc["ingen", "contacts"]) == 0
    assert float(may19.loc["1806", "egenandel_sum"]) + float(may19.loc["1875", "egenandel_sum"]) == \
        pytest.approx(14 * 100.5)  # money apportioned in øre, the total kept
    assert int(_cells(w, dt.date(2017, 5, 1), "weight").loc["5001", "contacts"]) == 7
    may23 = _cells(w, dt.date(2023, 5, 1), "weight")
    assert sorted((int(may23.loc["1508", "contacts"]), int(may23.loc["1580", "contacts"]))) == [4, 5]
    assert int(may23.loc["9999", "contacts"]) == 2 and int(may23.loc["0000", "contacts"]) == 11
    assert "9900" not in may23.index  # 9999 is in no county
    # zero-filled: every current municipality, county and the country, for every combination
    grid = w.query("SELECT COUNT(*) AS n FROM kuhr_contacts_monthly WHERE treatment_month = :m", m=dt.date(2023, 5, 1))
    units_n = int(w.query("SELECT COUNT(*) AS n FROM geography_units")["n"].iloc[0])
    combos = len(w.query("SELECT DISTINCT tjeneste, CASE WHEN kontakt THEN kontakttype ELSE 'ingen' END AS k "
                         "FROM ref_kuhr_takster"))
    assert int(grid["n"].iloc[0]) == units_n * combos * 4 * 11
    assert int(may23.loc["0301", "contacts"]) == 0


def test_rollup_policy_reports_presplit_data_on_the_county_unknown_code(claims_warehouse, monkeypatch,
                                                                      dagster_instance):
    w = _use_policy(monkeypatch, claims_warehouse, "rollup", dagster_instance)
    may19 = _cells(w, dt.date(2019, 5, 1), "rollup")
    assert int(may19.loc["1899", "contacts"]) == 11 and int(may19.loc["5099", "contacts"]) == 17
    assert int(may19.loc["1806", "contacts"]) == 3 and int(may19.loc["1875", "contacts"]) == 0
    assert int(may19.loc["1800", "contacts"]) == 14  # xx99 counts in its county


def test_suppress_policy_leaves_the_successors_empty_but_the_county_whole(claims_warehouse, monkeypatch,
                                                                        dagster_instance):
    w = _use_policy(monkeypatch, claims_warehouse, "suppress", dagster_instance)
    may19 = _cells(w, dt.date(2019, 5, 1), "suppress")
    for code in ("1806", "1875", "5055", "5056", "5059"):
        assert pd.isna(may19.loc[code, "contacts"]) and bool(may19.loc[code, "split_suppressed"])
    assert int(may19.loc["1800", "contacts"]) == 14 and int(may19.loc["0000", "contacts"]) == 31
    assert not bool(may19.loc["0301", "split_suppressed"])


#: (pid, bostedskommune, kjonn, fodselsaar): persons in several cells of March 2023 (FASTLEGE consultations)
SEVERAL_CELLS = [
    ("a", "0301", "1", 1980), ("a", "4601", "1", 1980),  # moved from Oslo to Bergen: two counties
    ("b", "4601", "2", 1990), ("b", "4601", "2", 1990), ("b", "4602", "2", 1990),  # two municipalities of 46
    ("c", "4601", "2", 1990), ("c", "4601", "9", 1990),  # sex reported two ways
    ("d", "0301", "1", 1950),  # in one cell only
]


@pytest.mark.heavy(minutes=1)
def test_a_person_in_several_cells_counts_once_in_each_and_once_above(reference_warehouse_url, dagster_instance,
                                                                      monkeypatch):
    month = dt.date(2023, 3, 1)
    claims = _claims().head(len(SEVERAL_CELLS)).assign(
        pid=[p for p, *_ in SEVERAL_CELLS], bostedskommune=[c for _, c, *_ in SEVERAL_CELLS],
        kjonn=[s for *_, s, _ in SEVERAL_CELLS], fodselsaar=[y for *_, y in SEVERAL_CELLS],
        behandlingsmaaned=month, mottatt_dato=month, is_contact=True, kontakttype="konsultasjon")
    w = Warehouse(reference_warehouse_url)
    with w.begin() as conn:
        bulk_insert(conn, "kuhr_claims", claims)
    w = _use_policy(monkeypatch, reference_warehouse_url, "weight", dagster_instance)
    kuhr_contacts.compute_monthly(w, [month], "weight")
    cells = w.query("SELECT kommunenummer, kjonn, age_group, contacts, patients, regninger FROM kuhr_contacts_monthly "
                    "WHERE treatment_month = :m AND tjeneste = 'FASTLEGE' AND kontakttype = 'konsultasjon'", m=month
                    ).set_index(["kommunenummer", "kjonn", "age_group"])

    def patients(code, sex="T", age="T"):
        return int(cells.loc[(code, sex, age), "patients"])
    assert (patients("0301"), patients("4601"), patients("4602")) == (2, 3, 1)
    assert (patients("0300"), patients("4600"), patients("0000")) == (2, 3, 4)  # a, b once in county 46
    assert int(cells.loc[("0000", "T", "T"), "contacts"]) == len(SEVERAL_CELLS)  # events add up
    assert int(cells.loc[("4600", "T", "T"), "contacts"]) == 6
    assert (patients("4601", "2"), patients("4601", "9"), patients("0000", "2")) == (2, 1, 2)  # c in both sexes
    assert (patients("4601", age="30-39"), patients("4600", "2", "30-39"), patients("0000", "1")) == (2, 2, 2)
    kuhr_contacts.compute_annual(w, [2023], "weight", run_date=dt.date(2025, 1, 1))
    annual = w.query("SELECT kommunenummer, patients FROM kuhr_contacts_annual WHERE year = 2023 AND "
                     "tjeneste = 'FASTLEGE' AND kjonn = 'T' AND age_group = 'T'").set_index("kommunenummer")
    assert [int(annual.loc[c, "patients"]) for c in ("0301", "4601", "4600", "0000")] == [2, 3, 3, 4]
