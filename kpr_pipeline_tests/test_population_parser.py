"""The SSB 07459 parser on the real exports, checked against the figures in reference_data/SOURCES.md."""

import pytest

from kpr_pipeline.domain import reference
from kpr_pipeline.domain.population import load_population, parse_ssb_07459

SSB = reference.REFERENCE_DIR / "ssb_07459"


@pytest.fixture(scope="module")
def population():
    return load_population(SSB)


def test_every_year_and_label_style_parses(population):
    totals = population[population.sex == "T"].groupby("year")["persons"].sum()
    assert list(totals.index) == list(range(2005, 2023))
    assert totals[2020] == 5_367_580


def test_codes_with_population_match_sources_md(population):
    populated = population[(population.sex == "T") & (population.persons > 0)].groupby("year")["kommunenummer"].nunique()
    expected = {2005: 420, 2008: 423, 2012: 424, 2013: 425, 2016: 425, 2017: 426, 2018: 422, 2019: 422, 2020: 356,
                2022: 356}
    assert {y: populated[y] for y in expected} == expected


def test_sex_file_adds_up_to_the_total_file():
    sexed = parse_ssb_07459(SSB / "norway_population_by_age_sex_2020.csv")
    total = parse_ssb_07459(SSB / "Personer2020.csv")
    by_code_age = sexed.groupby(["kommunenummer", "age"])["persons"].sum()
    assert by_code_age.equals(total.set_index(["kommunenummer", "age"])["persons"].sort_index())


def test_quirks(population):
    assert population["age"].max() == 105 and population["age"].min() == 0
    steinkjer = population[(population.kommunenummer == "5006") & (population.year == 2021)]
    assert steinkjer["persons"].sum() > 20_000  # "K-5006 teinkj" (sic) still parses by code
    assert not population["kommunenummer"].str.startswith("21-").any()
