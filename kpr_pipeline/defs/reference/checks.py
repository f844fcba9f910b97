"""Checks on the reference tables as loaded into the warehouse."""


import dagster as dg

from kpr_pipeline.defs.contract_checks import contract_check
from kpr_pipeline.defs.reference.assets import REFERENCE_TABLES
from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.domain.geography import CodeHistory
from kpr_pipeline.domain.reference import CURRENT_DIVISION_YEAR

contract_checks = [contract_check(name, name) for name in REFERENCE_TABLES]


@dg.asset_check(asset="ref_municipality_changes", blocking=True,
                description="Every old code's change weights sum to 1.")
def change_weights_sum_to_one(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    bad = warehouse.get().query(
        "SELECT old_code, SUM(weight) AS total FROM ref_municipality_changes GROUP BY old_code "
        "HAVING ABS(SUM(weight) - 1.0) > 1e-9"
    )
    return dg.AssetCheckResult(passed=bad.empty, metadata={"codes_with_bad_weights": bad["old_code"].tolist()})


@dg.asset_check(asset="ref_municipality_changes", blocking=True, additional_deps=["ref_municipalities"],
                description=f"Every chain from a code valid since 2016 ends in codes valid in {CURRENT_DIVISION_YEAR}.")
def change_chains_reach_current_codes(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    w = warehouse.get()
    history = CodeHistory(w.query("SELECT * FROM ref_municipalities"), w.query("SELECT * FROM ref_municipality_changes"))
    broken = history.broken_chains(from_year=2016)
    return dg.AssetCheckResult(passed=not broken, metadata={"broken_chains": broken,
                                                            "current_codes": len(history.valid_codes(CURRENT_DIVISION_YEAR))})


@dg.asset_check(asset="ref_population", blocking=True, additional_deps=["ref_municipalities"],
                description="From 2017 every valid municipality has population, and no code outside the list has any.")
def population_covers_valid_codes(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    w = warehouse.get()
    history = CodeHistory(w.query("SELECT * FROM ref_municipalities"), w.query("SELECT * FROM ref_municipality_changes"))
    populated = w.query("SELECT year, kommunenummer FROM ref_population WHERE sex = 'T' GROUP BY year, kommunenummer "
                        "HAVING SUM(persons) > 0")
    problems = {}
    for year, group in populated.groupby("year"):
        valid = {c for c in history.valid_codes(int(year)) if c not in ("2100", "2200", "9999")}
        have = set(group["kommunenummer"])
        unknown = sorted(have - valid)
        missing = sorted(valid - have) if int(year) >= 2017 else []
        if unknown or missing:
            problems[str(int(year))] = {"not_in_list": unknown, "without_population": missing}
    return dg.AssetCheckResult(passed=not problems, metadata={"years_checked": int(populated["year"].nunique()),
                                                              "problems": dg.MetadataValue.json(problems)})


population_contract = contract_check("population_denominators", "population_current",
                                     lambda _: ("SELECT * FROM population_current WHERE year >= 2016", {}))


@dg.asset_check(asset="population_denominators", blocking=True,
                description="Mapping to current borders preserves every published year's national total, and every "
                f"code is a {CURRENT_DIVISION_YEAR} municipality or a county's unknown-municipality code (xx99).")
def population_totals_preserved(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    w = warehouse.get()
    source = w.query("SELECT year, SUM(persons) AS persons FROM ref_population WHERE sex = 'T' GROUP BY year")
    mapped = w.query("SELECT year, SUM(persons) AS persons, MAX(split_policy) AS policy FROM population_current "
                     "WHERE sex = 'T' AND NOT imputed GROUP BY year")
    both = source.merge(mapped, on="year", suffixes=("_source", "_current"), how="outer")
    policy = mapped["policy"].iloc[0] if len(mapped) else "weight"
    differ = both[both["persons_source"] != both["persons_current"]]
    valid = set(CodeHistory(w.query("SELECT * FROM ref_municipalities"), w.query(
        "SELECT * FROM ref_municipality_changes")).valid_codes(CURRENT_DIVISION_YEAR))
    codes = set(w.query("SELECT DISTINCT kommunenummer FROM population_current")["kommunenummer"])
    strange = sorted(c for c in codes - valid if not c.endswith("99"))
    return dg.AssetCheckResult(passed=differ.empty and not strange, metadata={
        "years_differing": [int(y) for y in differ["year"]], "codes_not_current": strange, "split_policy": policy})


reference_checks = [*contract_checks, change_weights_sum_to_one, change_chains_reach_current_codes,
                    population_covers_valid_codes, population_contract, population_totals_preserved]
