"""Population denominators on current borders: totals preserved, splits by policy, imputed years."""

import pandas as pd
import pytest

from kpr_pipeline.domain.geography import apportion, code_map
from kpr_pipeline.domain.population import population_current


def _population() -> pd.DataFrame:
    # 2019: Tysfjord (1850, split 2020 into 1806/1875 by 0.5/0.5), Oslo; 2020: the successors.
    return pd.DataFrame({
        "year": [2019, 2019, 2019, 2020, 2020],
        "kommunenummer": ["1850", "0301", "1805", "1806", "1875"],
        "age": [80, 80, 80, 80, 80], "sex": ["T"] * 5, "persons": [11, 500, 7, 30, 12]})


def test_weight_policy_preserves_totals_and_carries_the_last_year_forward():
    out = population_current(_population(), "weight", through_year=2022)
    y2019 = out[out["year"] == 2019].set_index("kommunenummer")["persons"]
    assert int(y2019.sum()) == 11 + 500 + 7  # totals preserved after rounding the split
    assert sorted(y2019.index) == ["0301", "1806", "1875"]  # 1805 Narvik became 1806 in 2020
    # 11 split 0.5/0.5 is 5.5 each: the remainder goes to the first successor, deterministically.
    assert (int(y2019["1806"]), int(y2019["1875"])) == (7 + 6, 5)
    assert out.loc[out["year"] <= 2020, "imputed"].eq(False).all()
    carried = out[out["year"].isin([2021, 2022])]
    assert carried["imputed"].all() and carried.groupby("year")["persons"].sum().tolist() == [42, 42]


def test_rollup_and_suppress_policies():
    rolled = population_current(_population(), "rollup", through_year=2020)
    y2019 = rolled[rolled["year"] == 2019].set_index("kommunenummer")["persons"]
    assert int(y2019["1899"]) == 11 and int(y2019["1806"]) == 7 and "1875" not in y2019.index
    suppressed = population_current(_population(), "suppress", through_year=2020)
    y2019 = suppressed[suppressed["year"] == 2019].set_index("kommunenummer")
    assert y2019.loc["1806", "suppressed"]  # shown empty; its figure still counts in county and country
    assert int(y2019["persons"].sum()) == 11 + 500 + 7
    assert y2019.loc["1875", "suppressed"] and not y2019.loc["0301", "suppressed"]


def test_code_map_follows_chains_and_keeps_unknown():
    m = code_map(["5012", "9999", "1505"], 2017)
    assert m[m["code"] == "5012"]["weight"].sum() == pytest.approx(1.0)
    assert m[m["code"] == "9999"]["current_code"].tolist() == ["9999"]
    with pytest.raises(ValueError, match="split policy"):
        code_map(["0301"], 2017, "average")


def test_apportion_rounds_to_preserve_each_total():
    frame = pd.DataFrame({"src": ["a"] * 3 + ["b"] * 2, "persons": [10] * 3 + [5] * 2, "weight": [0.35, 0.35, 0.3, 0.5, 0.5]})
    out = apportion(frame, "persons", ["src"])
    assert out[:3].sum() == 10 and out[3:].sum() == 5 and (out >= 0).all()


def test_the_real_ssb_exports_map_onto_the_current_division():
    from kpr_pipeline.domain.population import load_population
    from kpr_pipeline.domain.reference import REFERENCE_DIR, municipality_codes_valid

    source = load_population(REFERENCE_DIR / "ssb_07459")
    out = population_current(source, "weight", through_year=2025)
    current = set(municipality_codes_valid(2024))
    assert set(out["kommunenummer"]) <= current
    for year in (2005, 2017, 2019, 2022):
        assert out[(out["year"] == year) & (out["sex"] == "T")]["persons"].sum() == \
            source[(source["year"] == year) & (source["sex"] == "T")]["persons"].sum()
    assert out[out["year"] == 2025]["imputed"].all()
