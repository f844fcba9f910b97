"""KPR-helse og omsorg checks: blocking where downstream work must stop, warnings for data stewards.

Metadata carries counts and municipality codes, never a value of a person column.
"""


import dagster as dg
import pandas as pd

from kpr_pipeline.defs.contract_checks import contract_check
from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.defs.run_partitions import run_partition_range
from kpr_pipeline.domain import identifiers

REJECT_RATE_WARN = 0.05
USERS_RATIO_RANGE = (0.8, 1.25)
USERS_RATIO_MIN_USERS = 50
MUNICIPALITY_DROP_WARN = 0.30
MUNICIPALITY_DROP_MIN_USERS = 20


def _years_where(context, alias: str = "") -> tuple[str, dict]:
    """SQL condition selecting the run's reporting years (all when unpartitioned)."""
    window = run_partition_range(context)
    if window is None:
        return "1 = 1", {}
    return f"{alias}reporting_year BETWEEN :first AND :last", {"first": int(window[0]), "last": int(window[1])}


def _services_of_run(context) -> tuple[str, dict]:
    where, params = _years_where(context)
    return f"SELECT * FROM care_services WHERE {where} ORDER BY pid LIMIT 200000", params


def _submissions_of_run(context) -> tuple[str, dict]:
    where, params = _years_where(context)
    return f"SELECT * FROM care_submissions WHERE {where}", params


services_contract = contract_check("care_reports", "care_services", _services_of_run)
submissions_contract = contract_check("care_reports", "care_submissions", _submissions_of_run)


@dg.asset_check(asset="care_reports", blocking=True,
                description="Every submission reconciles: tjeneste elements = loaded + merged + rejected + those of "
                "rejected persons; rejected rows and loaded rows in the warehouse equal the submission's counts; "
                "one current submission per municipality and year, and only it has data.")
def care_accounting(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _years_where(context, "s.")
    w = warehouse.get()
    bad = w.query(f"""
        SELECT s.reporting_year, s.data_file FROM care_submissions s
        LEFT JOIN (SELECT reporting_year, data_file, COUNT(*) AS n FROM care_rejected_rows
                   GROUP BY reporting_year, data_file) r ON r.reporting_year = s.reporting_year AND r.data_file = s.data_file
        LEFT JOIN (SELECT reporting_year, data_file, COUNT(*) AS n FROM care_services
                   GROUP BY reporting_year, data_file) c ON c.reporting_year = s.reporting_year AND c.data_file = s.data_file
        WHERE s.status <> 'quarantined' AND {where} AND (
              s.services <> s.services_loaded + s.services_merged + s.services_rejected + s.services_person_rejected
           OR COALESCE(r.n, 0) <> s.rows_rejected
           OR COALESCE(c.n, 0) <> CASE WHEN s.status = 'current' THEN s.services_loaded ELSE 0 END)""", **params)
    doubles = w.query(f"""
        SELECT s.reporting_year, s.kommunenummer FROM care_submissions s WHERE s.status = 'current' AND {where}
        GROUP BY s.reporting_year, s.kommunenummer HAVING COUNT(*) > 1""", **params)
    totals = w.query(f"""
        SELECT COUNT(*) AS submissions, COALESCE(SUM(persons), 0) AS persons, COALESCE(SUM(services), 0) AS services,
               COALESCE(SUM(services_loaded), 0) AS services_loaded, COALESCE(SUM(rows_rejected), 0) AS rows_rejected
        FROM care_submissions s WHERE status = 'current' AND {where}""", **params).iloc[0]
    return dg.AssetCheckResult(passed=bad.empty and doubles.empty, metadata={
        **{f"current_{k}": int(v) for k, v in totals.items()},
        "files_not_reconciled": bad["data_file"].tolist()[:100],
        "municipality_years_with_two_current": [f"{r.reporting_year}/{r.kommunenummer}" for r in doubles.itertuples()]})


@dg.asset_check(asset="care_reports", blocking=True,
                description="No raw person identifier stored: pids are 64-hex pseudonyms and no valid 11-digit "
                "identifier (real or test identity) appears in rejected rows or submission reasons.")
def care_no_raw_identifier(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _years_where(context)
    w = warehouse.get()
    bad_pid = sum(int(w.scalar(f"SELECT COUNT(*) FROM {t} WHERE {where} AND LENGTH(pid) <> 64", **params))
                  for t in ("care_services", "care_rejected_rows", "care_warnings", "care_function_assessments"))
    texts = pd.concat([
        w.query(f"SELECT record AS t FROM care_rejected_rows WHERE {where}", **params)["t"],
        w.query(f"SELECT message AS t FROM care_rejected_rows WHERE {where}", **params)["t"],
        w.query(f"SELECT reason AS t FROM care_submissions WHERE {where}", **params)["t"],
    ]).dropna().astype(str)
    candidates, found = identifiers.identifiers_in_texts(texts)
    return dg.AssetCheckResult(passed=bad_pid == 0 and found == 0, metadata={
        "texts_scanned": len(texts), "eleven_digit_strings": candidates, "identifiers_found": found,
        "malformed_pids": bad_pid})


@dg.asset_check(asset="care_completeness", blocking=False,
                description="Every municipality valid in the year has reported (or a steward accepted the gap). "
                "A warning before the 15 January deadline, an error after it; the missing are listed.")
def care_reports_complete(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _years_where(context)
    w = warehouse.get()
    years = w.query(f"SELECT * FROM care_reporting_years WHERE {where} ORDER BY reporting_year", **params)
    grid = w.query(f"SELECT reporting_year, kommunenummer, status FROM care_completeness WHERE {where} AND expected "
                   "AND status IN ('missing', 'quarantined') ORDER BY kommunenummer", **params)
    missing = {str(y): grid.loc[grid["reporting_year"] == y, "kommunenummer"].tolist() for y in years["reporting_year"]}
    overdue = bool((years["deadline_passed"].astype(bool) & (years["missing"] > 0)).any())
    return dg.AssetCheckResult(
        passed=not any(missing.values()),
        severity=dg.AssetCheckSeverity.ERROR if overdue else dg.AssetCheckSeverity.WARN,
        metadata={"missing_by_year": dg.MetadataValue.json(missing),
                  "deadline_passed": dg.MetadataValue.json({str(r.reporting_year): bool(r.deadline_passed)
                                                            for r in years.itertuples()}),
                  "final": dg.MetadataValue.json({str(r.reporting_year): bool(r.final) for r in years.itertuples()}),
                  "accepted_gaps": int(years["accepted_gaps"].sum()) if len(years) else 0})


@dg.asset_check(asset="care_completeness", blocking=False,
                description=f"Municipalities whose current submission has more than {REJECT_RATE_WARN:.0%} of its "
                "persons and services rejected.")
def care_reject_rate_by_municipality(context: dg.AssetCheckExecutionContext,
                                     warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _years_where(context)
    s = warehouse.get().query(
        f"SELECT reporting_year, kommunenummer, rows_rejected, persons, services FROM care_submissions "
        f"WHERE status = 'current' AND {where}", **params)
    rate = s["rows_rejected"] / (s["services"] + s["persons"]).where(lambda n: n > 0)
    high = s[rate > REJECT_RATE_WARN]
    return dg.AssetCheckResult(passed=high.empty, severity=dg.AssetCheckSeverity.WARN, metadata={
        "threshold": REJECT_RATE_WARN, "submissions": len(s),
        "above_threshold": [f"{r.reporting_year}/{r.kommunenummer}" for r in high.itertuples()],
        "overall_reject_rate": float(s["rows_rejected"].sum() / max(1, (s["services"] + s["persons"]).sum()))})


@dg.asset_check(asset="care_completeness", blocking=False,
                description="Users per service code nationally against the previous year "
                f"({USERS_RATIO_RANGE[0]}x to {USERS_RATIO_RANGE[1]}x, codes with {USERS_RATIO_MIN_USERS}+ users).")
def care_users_vs_previous_year(context: dg.AssetCheckExecutionContext,
                                warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _years_where(context)
    w = warehouse.get()
    years = w.query(f"SELECT DISTINCT reporting_year FROM care_reporting_years WHERE {where}", **params)["reporting_year"]
    users = w.query("SELECT reporting_year, tjenestekode, COUNT(DISTINCT pid) AS users FROM care_services "
                    "GROUP BY reporting_year, tjenestekode")
    table = users.pivot(index="tjenestekode", columns="reporting_year", values="users")
    odd, ratios = [], {}
    lo, hi = USERS_RATIO_RANGE
    for year in years:
        if year not in table.columns or year - 1 not in table.columns:
            continue
        before, now = table[year - 1], table[year]
        ratio = (now.fillna(0) / before).where(before >= USERS_RATIO_MIN_USERS)
        ratios[str(year)] = {str(k): round(float(v), 2) for k, v in ratio.dropna().items()}
        odd += [f"{year}/{k}" for k, v in ratio.dropna().items() if not lo <= v <= hi]
    return dg.AssetCheckResult(passed=not odd, severity=dg.AssetCheckSeverity.WARN, metadata={
        "service_codes_outside_range": odd, "ratios": dg.MetadataValue.json(ratios)})


@dg.asset_check(asset="care_completeness", blocking=False,
                description=f"Reporting municipalities whose users dropped by more than {MUNICIPALITY_DROP_WARN:.0%} "
                f"from the previous year (those with {MUNICIPALITY_DROP_MIN_USERS}+ users the year before).")
def care_municipality_users_drop(context: dg.AssetCheckExecutionContext,
                                 warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _years_where(context)
    grid = warehouse.get().query(
        f"SELECT reporting_year, kommunenummer, users, users_previous_year, users_change FROM care_completeness "
        f"WHERE {where} AND users_previous_year >= :min_users", min_users=MUNICIPALITY_DROP_MIN_USERS, **params)
    # A municipality that has not reported is the completeness check's concern, not a drop.
    dropped = grid[grid["users"].notna() & (grid["users"] < grid["users_previous_year"] * (1 - MUNICIPALITY_DROP_WARN))]
    return dg.AssetCheckResult(passed=dropped.empty, severity=dg.AssetCheckSeverity.WARN, metadata={
        "threshold": MUNICIPALITY_DROP_WARN, "municipalities_compared": len(grid),
        "dropped": [f"{r.reporting_year}/{r.kommunenummer}" for r in dropped.itertuples()]})


care_checks = [services_contract, submissions_contract, care_accounting, care_no_raw_identifier,
               care_reports_complete, care_reject_rate_by_municipality, care_users_vs_previous_year,
               care_municipality_users_drop]
