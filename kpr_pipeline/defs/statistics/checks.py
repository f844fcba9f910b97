"""Checks on the statistics: totals consistent across levels and with their inputs, rates plausible
(data contracts), and the publication safe from subtraction."""


import dagster as dg
import pandas as pd

from kpr_pipeline.defs.contract_checks import contract_check
from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.defs.run_partitions import run_partition_range
from kpr_pipeline.settings import get_settings
from kpr_pipeline.statistics import attack, kuhr_contacts, publication
from kpr_pipeline.statistics.consistency import mismatches_sql


@dg.asset_check(asset="kuhr_delivery_completeness", blocking=True,
                description="Per month, the delays add up to the counted regninger of kuhr_month_summary, and the "
                "cumulative share ends at 1.")
def delivery_completeness_adds_up(context: dg.AssetCheckExecutionContext,
                                  warehouse: WarehouseResource) -> dg.AssetCheckResult:
    window = run_partition_range(context)
    where, params = ("1 = 1", {})
    if window:
        where, params = "c.treatment_month BETWEEN :a AND :b", {"a": window[0][:10], "b": window[1][:10]}
    bad = warehouse.get().query(f"""
        SELECT c.treatment_month FROM (
            SELECT treatment_month, SUM(regninger) AS n, MAX(share_of_total) AS last_share
            FROM kuhr_delivery_completeness c WHERE {where} GROUP BY treatment_month) c
        LEFT JOIN kuhr_month_summary s ON s.treatment_month = c.treatment_month
        WHERE c.n <> COALESCE(s.regninger, 0) OR (c.n > 0 AND ABS(c.last_share - 1.0) > 1e-9)""", **params)
    return dg.AssetCheckResult(passed=bad.empty, metadata={"months_not_adding_up": [str(m)[:10] for m in
                                                                                   bad["treatment_month"]]})


def _window(context, column: str, yearly: bool) -> tuple[str, dict]:
    window = run_partition_range(context)
    if not window:
        return "1 = 1", {}
    if yearly:
        return f"{column} BETWEEN :wa AND :wb", {"wa": int(window[0][:4]), "wb": int(window[1][:4])}
    return f"{column} BETWEEN :wa AND :wb", {"wa": window[0][:10], "wb": window[1][:10]}


#: asset -> (table, period column, yearly, extra filter, keys, additive measures, dimensions with a T row).
#: care_gp_contacts has none: users and their contacts are per person (a person served by two municipalities
#: counts in both).
TOTALS = {
    "kuhr_contacts_monthly": ("kuhr_contacts_monthly", "treatment_month", False, "1 = 1",
                              ["treatment_month", "kommunenummer", "tjeneste", "kontakttype", "kjonn", "age_group"],
                              ["contacts", "regninger"], ["kjonn", "age_group"]),
    "kuhr_contacts_annual": ("kuhr_contacts_annual", "year", True, "1 = 1",
                             ["year", "kommunenummer", "tjeneste", "kjonn", "age_group"],
                             ["contacts", "consultations", "regninger"], ["kjonn", "age_group"]),
    "care_users_annual": ("care_users_annual", "year", True, "source = 'KPR'",
                          ["year", "source", "kommunenummer", "tjenestegruppe", "tjenestekode", "kjonn", "age_group"],
                          ["days"], ["kjonn", "age_group"]),
    "care_users_annual_iplos": ("care_users_annual", "year", True, "source = 'IPLOS'",
                                ["year", "source", "kommunenummer", "tjenestegruppe", "tjenestekode", "kjonn",
                                 "age_group"], ["days"], ["kjonn", "age_group"]),
}


def _totals_check(asset: str) -> dg.AssetChecksDefinition:
    table, period, yearly, extra, keys, measures, totals = TOTALS[asset]

    @dg.asset_check(asset=asset, name="totals_consistent", blocking=True,
                    description=f"Every county, national and T row of {table} equals the sum of its parts for "
                    f"{', '.join(measures)} (events add up; person counts need not).")
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        where, params = _window(context, period, yearly)
        year = "year" if yearly else f"EXTRACT(YEAR FROM {period})"
        w, args = warehouse.get(), (table, keys, measures, f"{where} AND {extra}", totals, year)
        bad = w.query(mismatches_sql(*args, candidates=True), **params)  # the non-zero cells only: fast
        if not bad.empty:  # the exact query decides (it knows which totals and parts exist)
            bad = w.query(mismatches_sql(*args), **params)
        return dg.AssetCheckResult(passed=bad.empty, metadata={
            "total_rows_not_adding_up": int(bad["cells"].sum()) if len(bad) else 0,
            "where": dg.MetadataValue.json(bad.astype(str).head(20).to_dict("records"))})

    return _check


@dg.asset_check(asset="kuhr_contacts_monthly", blocking=True, name="regninger_match_claims",
                description="The national regninger of each month (all sexes and ages) equal the counted regninger "
                "of kuhr_claims: every regning is placed in exactly one municipality cell.")
def regninger_match_claims(context: dg.AssetCheckExecutionContext,
                           warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _window(context, "treatment_month", False)
    bad = warehouse.get().query(f"""
        SELECT s.treatment_month, s.n, COALESCE(c.n, 0) AS claims FROM (
          SELECT treatment_month, SUM(regninger) AS n FROM kuhr_contacts_monthly
          WHERE {where} AND kommunenummer = '0000' AND kjonn = 'T' AND age_group = 'T' GROUP BY treatment_month) s
        LEFT JOIN (SELECT behandlingsmaaned AS treatment_month, COUNT(*) AS n FROM kuhr_claims
                   WHERE NOT kreditering AND NOT credited GROUP BY behandlingsmaaned) c
          ON c.treatment_month = s.treatment_month
        WHERE s.n <> COALESCE(c.n, 0)""", **params)
    return dg.AssetCheckResult(passed=bad.empty, metadata={"months_differing": [str(m)[:10] for m in
                                                                                bad["treatment_month"]]})


def _rows(table: str, period: str, yearly: bool, extra: str = "1 = 1"):
    def rows_sql(context):
        where, params = _window(context, period, yearly)
        return f"SELECT * FROM {table} WHERE {where} AND {extra}", params
    return rows_sql


@dg.asset_check(asset="statistics_publication", blocking=True, name="no_suppressed_cell_recoverable",
                description="Attacks every published CSV by subtraction along its hierarchies (repeatedly solving "
                "any total with one unknown part) and recovers no suppressed cell.")
def no_suppressed_cell_recoverable() -> dg.AssetCheckResult:
    directory = publication.publication_dir(get_settings().output_dir)
    results = {pub.rules.table: attack.attack_file(directory / f"{pub.rules.table}.csv", pub.rules)
               for pub in publication.PUBLICATIONS}
    recovered = {t: r.recovered for t, r in results.items() if r.recovered}
    return dg.AssetCheckResult(passed=not recovered, metadata={
        "suppressed_cells": sum(r.suppressed for r in results.values()),
        "equations_tried": sum(r.equations for r in results.values()),
        "recovered_by_table": dg.MetadataValue.json({t: n for t, n in recovered.items()})})


@dg.asset_check(asset="kuhr_contacts_annual", name="national_gp_figures_plausible", blocking=False,
                description="National GP consultations per GP patient within 20 % of the calibration (3.0 per "
                "inhabitant and 72 % with one: about 4.2), for the years with consultations in all 12 months. "
                "Per patient, the figure holds for synthetic data at any scale as for the national registry.")
def national_gp_figures_plausible(context: dg.AssetCheckExecutionContext,
                                  warehouse: WarehouseResource) -> dg.AssetCheckResult:
    _, params = _window(context, "year", True)
    years = {"ya": params.get("wa", 0), "yb": params.get("wb", 9999)}
    national = warehouse.get().query(kuhr_contacts.NATIONAL_GP_SQL, **years)
    bad, not_judged = kuhr_contacts.implausible_gp_years(national)
    figures = {int(r.year): {"consultations_per_patient": round(float(r.consultations) / r.patients_consultation, 3)
                             if r.patients_consultation else None,
                             "consultations_per_inhabitant": r.consultations_per_inhabitant,
                             "share_with_consultation": r.share_with_consultation}
               for r in national.itertuples(index=False)}
    return dg.AssetCheckResult(passed=not bad, severity=dg.AssetCheckSeverity.WARN, metadata={
        "implausible_years": dg.MetadataValue.json({str(y): v for y, v in bad.items()}),
        "years_not_complete": not_judged, "national_gp_figures": dg.MetadataValue.json(
            {str(y): {k: (None if v is None or pd.isna(v) else float(v)) for k, v in f.items()}
             for y, f in figures.items()}),
        "expected_consultations_per_patient": round(kuhr_contacts.GP_CONSULTATIONS_PER_PATIENT, 3)})


statistics_checks = [national_gp_figures_plausible, 
    delivery_completeness_adds_up, regninger_match_claims, no_suppressed_cell_recoverable,
    *[_totals_check(asset) for asset in TOTALS],
    # the contracts read the cells with data: a zero-filled cell holds no rate to check
    contract_check("kuhr_contacts_annual", "kuhr_contacts_annual",
                   _rows("kuhr_contacts_annual", "year", True, "regninger > 0")),
    contract_check("care_users_annual", "care_users_annual",
                   _rows("care_users_annual", "year", True, "source = 'KPR' AND users_during_year > 0")),
    contract_check("care_gp_contacts", "care_gp_contacts", _rows("care_gp_contacts", "year", True, "users > 0")),
]
