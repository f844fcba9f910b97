"""IPLOS checks: the extracts' accounting, and the 2017 reconciliation (match rates, totals)."""


import dagster as dg

from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.quality.reconciliation import NATIONAL, municipality_match_rates
from kpr_pipeline.settings import get_settings

#: Below this national match rate the linkage itself is wrong, not the data: a wrong key matches nobody.
IMPLAUSIBLE_NATIONAL_MATCH_RATE = 0.5


@dg.asset_check(asset="iplos_extracts", blocking=True,
                description="Every loaded extract: rows loaded + rejected = rows in file, and the warehouse holds "
                "exactly those rows; no pseudonym that is not 64 lower-case hex is stored.")
def iplos_accounting(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    w = warehouse.get()
    bad = w.query("""
        SELECT e.reporting_year FROM iplos_extracts e
        LEFT JOIN (SELECT reporting_year, COUNT(*) AS n FROM iplos_services GROUP BY reporting_year) s USING (reporting_year)
        LEFT JOIN (SELECT reporting_year, COUNT(*) AS n FROM iplos_rejected_rows GROUP BY reporting_year) r
             USING (reporting_year)
        WHERE e.status = 'loaded' AND (e.rows_loaded + e.rows_rejected <> e.rows_in_file
              OR COALESCE(s.n, 0) <> e.rows_loaded OR COALESCE(r.n, 0) <> e.rows_rejected)""")
    malformed = int(w.scalar("SELECT COUNT(*) FROM iplos_services WHERE LENGTH(pseudonym) <> 64"))
    years = w.query("SELECT reporting_year, status FROM iplos_extracts ORDER BY reporting_year")
    return dg.AssetCheckResult(passed=bad.empty and malformed == 0, metadata={
        "years_not_reconciled": [int(y) for y in bad["reporting_year"]], "malformed_pseudonyms": malformed,
        "years_loaded": [int(y) for y in years.loc[years["status"] == "loaded", "reporting_year"]]})


def _national(w):
    return w.query(f"SELECT * FROM reconciliation_2017 WHERE kommunenummer = '{NATIONAL}' AND tjenestekode IS NULL")


@dg.asset_check(asset="reconciliation_2017", blocking=True,
                description=f"The national match rate is not implausibly low (below {IMPLAUSIBLE_NATIONAL_MATCH_RATE:.0%}"
                " means the linkage, not the data, is wrong).")
def reconciliation_national_match_rate(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    row = _national(warehouse.get())
    if row.empty:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no reconciliation rows"})
    r = row.iloc[0]
    rate = float(r["match_rate"]) if r["match_rate"] == r["match_rate"] else 0.0
    passed = rate >= IMPLAUSIBLE_NATIONAL_MATCH_RATE
    hint = ("" if passed else
            "IPLOS_PSEUDONYM_KEY is probably wrong (persons do not match), or the 2017 municipal reports were loaded "
            "without it: check the key, then re-run care_year_job for 2017 and reconciliation_2017.")
    return dg.AssetCheckResult(passed=passed, description=hint or None, metadata={
        "national_match_rate": rate, "threshold": IMPLAUSIBLE_NATIONAL_MATCH_RATE,
        "persons_kpr": int(r["persons_kpr"]), "persons_iplos": int(r["persons_iplos"]),
        "persons_both": int(r["persons_both"]), "likely_cause": hint or "none"})


@dg.asset_check(asset="reconciliation_2017", blocking=False,
                description="Municipalities whose match rate is below KPR_RECONCILIATION_MATCH_THRESHOLD (listed).")
def reconciliation_municipalities_below_threshold(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    threshold = get_settings().reconciliation_match_threshold
    cells = municipality_match_rates(warehouse.get())
    below = cells.loc[cells["match_rate"] < threshold, "kommunenummer"].tolist()
    return dg.AssetCheckResult(passed=not below, severity=dg.AssetCheckSeverity.WARN, metadata={
        "threshold": threshold, "municipalities": len(cells), "below_threshold": below})


@dg.asset_check(asset="reconciliation_2017", blocking=True,
                description="The reconciliation's national totals equal the rows loaded on both sides, and the "
                "municipality cells add up to the national decisions.")
def reconciliation_totals(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    w = warehouse.get()
    row = _national(w)
    loaded = w.query("""
        SELECT (SELECT COUNT(*) FROM care_services WHERE reporting_year = 2017 AND iplos_pseudonym IS NOT NULL) AS dk,
               (SELECT COUNT(DISTINCT iplos_pseudonym) FROM care_services WHERE reporting_year = 2017) AS pk,
               (SELECT COUNT(*) FROM iplos_services WHERE reporting_year = 2017) AS di,
               (SELECT COUNT(DISTINCT pseudonym) FROM iplos_services WHERE reporting_year = 2017) AS pi""").iloc[0]
    cells = w.query(f"SELECT COALESCE(SUM(decisions_kpr), 0) AS dk, COALESCE(SUM(decisions_iplos), 0) AS di "
                    f"FROM reconciliation_2017 WHERE kommunenummer <> '{NATIONAL}'").iloc[0]
    national = row.iloc[0] if len(row) else None
    got = {"decisions_kpr": int(national["decisions_kpr"]) if national is not None else 0,
           "persons_kpr": int(national["persons_kpr"]) if national is not None else 0,
           "decisions_iplos": int(national["decisions_iplos"]) if national is not None else 0,
           "persons_iplos": int(national["persons_iplos"]) if national is not None else 0}
    expected = {"decisions_kpr": int(loaded["dk"]), "persons_kpr": int(loaded["pk"]),
                "decisions_iplos": int(loaded["di"]), "persons_iplos": int(loaded["pi"])}
    passed = got == expected and int(cells["dk"]) == expected["decisions_kpr"] and int(cells["di"]) == expected[
        "decisions_iplos"]
    return dg.AssetCheckResult(passed=passed, metadata={
        "reconciliation": dg.MetadataValue.json(got), "loaded": dg.MetadataValue.json(expected),
        "cells_decisions_kpr": int(cells["dk"]), "cells_decisions_iplos": int(cells["di"])})


iplos_checks = [iplos_accounting, reconciliation_national_match_rate, reconciliation_municipalities_below_threshold,
                reconciliation_totals]
