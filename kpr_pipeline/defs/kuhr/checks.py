"""KUHR checks: blocking where downstream work must stop, warnings for data stewards.

Metadata carries counts and delivery ids, never a value of a person column.
"""


import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from kpr_pipeline.defs.contract_checks import contract_check
from kpr_pipeline.defs.run_partitions import run_partition_range
from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.domain import identifiers
from kpr_pipeline.quality.freshness import kuhr_freshness
from kpr_pipeline.settings import get_settings

OSLO = ZoneInfo("Europe/Oslo")
REJECT_RATE_WARN = 0.02
LATE_SHARE_WARN = 0.05
GP_NO_DIAGNOSIS_WARN = 0.01
VOLUME_RATIO_RANGE = (0.5, 2.0)
CONTRACT_SAMPLE_ROWS = 200_000


def _run_deliveries_where(context, alias: str = "") -> tuple[str, dict]:
    """SQL condition selecting the deliveries of the run's delivery dates (all when unpartitioned)."""
    window = run_partition_range(context)
    if window is None:
        return "1 = 1", {}
    return f"{alias}delivery_date BETWEEN :first AND :last", {"first": window[0], "last": window[1]}


def _claims_of_run(context) -> tuple[str, dict]:
    where, params = _run_deliveries_where(context)
    return (f"SELECT * FROM kuhr_claims WHERE delivery_id IN (SELECT delivery_id FROM kuhr_deliveries WHERE {where}) "
            f"ORDER BY regning_id LIMIT {CONTRACT_SAMPLE_ROWS}", params)


claims_contract = contract_check("kuhr_deliveries", "kuhr_claims", _claims_of_run)
deliveries_contract = contract_check("kuhr_deliveries", "kuhr_deliveries")


@dg.asset_check(asset="kuhr_deliveries", blocking=True,
                description="Every loaded delivery: rows loaded + rejected + duplicate = rows in file, and the "
                "warehouse holds exactly the rows the delivery record says.")
def kuhr_accounting(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _run_deliveries_where(context, "d.")
    bad = warehouse.get().query(f"""
        SELECT d.delivery_id FROM kuhr_deliveries d
        LEFT JOIN (SELECT delivery_id, COUNT(*) AS n FROM kuhr_claims GROUP BY delivery_id) c USING (delivery_id)
        LEFT JOIN (SELECT delivery_id, COUNT(*) AS n FROM kuhr_rejected_rows GROUP BY delivery_id) r USING (delivery_id)
        WHERE d.status = 'loaded' AND {where}
          AND (d.rows_loaded + d.rows_rejected + d.rows_duplicate <> d.rows_in_file
               OR COALESCE(c.n, 0) <> d.rows_loaded OR COALESCE(r.n, 0) <> d.rows_rejected)""", **params)
    totals = warehouse.get().query(f"""
        SELECT COUNT(*) AS deliveries, COALESCE(SUM(rows_in_file), 0) AS rows_in_files,
               COALESCE(SUM(rows_loaded), 0) AS rows_loaded, COALESCE(SUM(rows_rejected), 0) AS rows_rejected,
               COALESCE(SUM(rows_duplicate), 0) AS rows_duplicate
        FROM kuhr_deliveries d WHERE status = 'loaded' AND {where}""", **params).iloc[0]
    return dg.AssetCheckResult(passed=bad.empty, metadata={
        **{k: int(v) for k, v in totals.items()}, "deliveries_not_reconciled": bad["delivery_id"].tolist()})


@dg.asset_check(asset="kuhr_deliveries", blocking=True,
                description="No raw person identifier in any stored column: pid is a 64-hex pseudonym and no "
                "11-digit identifier (real or test identity) appears in rejected-row records.")
def kuhr_no_raw_identifier(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _run_deliveries_where(context)
    w = warehouse.get()
    runs = f"delivery_id IN (SELECT delivery_id FROM kuhr_deliveries WHERE {where})"
    bad_pid = int(w.scalar(f"SELECT COUNT(*) FROM kuhr_claims WHERE {runs} AND LENGTH(pid) <> 64", **params))
    records = w.query(f"SELECT record FROM kuhr_rejected_rows WHERE {runs}", **params)["record"]
    candidates, found = identifiers.identifiers_in_texts(records)
    return dg.AssetCheckResult(passed=bad_pid == 0 and found == 0, metadata={
        "rejected_records_scanned": len(records), "eleven_digit_strings": candidates,
        "identifiers_found": found, "malformed_pids": bad_pid})


@dg.asset_check(asset="kuhr_deliveries", blocking=False,
                description=f"Deliveries whose reject rate is above {REJECT_RATE_WARN:.0%} (stewards look at them).")
def kuhr_reject_rate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _run_deliveries_where(context)
    d = warehouse.get().query(
        f"SELECT delivery_id, rows_rejected, rows_in_file FROM kuhr_deliveries WHERE status = 'loaded' AND {where}",
        **params)
    rate = d["rows_rejected"] / d["rows_in_file"].where(d["rows_in_file"] > 0)
    high = d.loc[rate > REJECT_RATE_WARN, "delivery_id"].tolist()
    return dg.AssetCheckResult(passed=not high, severity=dg.AssetCheckSeverity.WARN, metadata={
        "deliveries": len(d), "deliveries_above_threshold": high, "threshold": REJECT_RATE_WARN,
        "overall_reject_rate": float(d["rows_rejected"].sum() / max(1, d["rows_in_file"].sum()))})


@dg.asset_check(asset="kuhr_deliveries", blocking=False,
                description=f"Share of late claims (received after the sixth month) above {LATE_SHARE_WARN:.0%}.")
def kuhr_late_share(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _run_deliveries_where(context)
    row = warehouse.get().query(
        f"SELECT COUNT(*) AS n, SUM(CASE WHEN late THEN 1 ELSE 0 END) AS late FROM kuhr_claims WHERE NOT kreditering "
        f"AND delivery_id IN (SELECT delivery_id FROM kuhr_deliveries WHERE {where})", **params).iloc[0]
    share = float(row["late"] or 0) / max(1, int(row["n"]))
    return dg.AssetCheckResult(passed=share <= LATE_SHARE_WARN, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"claims": int(row["n"]), "late_share": share, "threshold": LATE_SHARE_WARN})


@dg.asset_check(asset="kuhr_deliveries", blocking=False,
                description=f"Share of GP and emergency-room claims rejected for lacking a diagnosis above "
                f"{GP_NO_DIAGNOSIS_WARN:.0%}.")
def kuhr_gp_without_diagnosis(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    where, params = _run_deliveries_where(context)
    w = warehouse.get()
    runs = f"delivery_id IN (SELECT delivery_id FROM kuhr_deliveries WHERE {where})"
    missing = int(w.scalar(f"SELECT COUNT(*) FROM kuhr_rejected_rows WHERE {runs} AND reasons LIKE '%missing_diagnosis%'",
                           **params))
    gp = int(w.scalar(f"SELECT COUNT(*) FROM kuhr_claims WHERE {runs} AND tjeneste IN ('FASTLEGE', 'LEGEVAKT')",
                      **params))
    share = missing / max(1, gp + missing)
    return dg.AssetCheckResult(passed=share <= GP_NO_DIAGNOSIS_WARN, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"gp_claims": gp + missing, "without_diagnosis": missing, "share": share})


@dg.asset_check(asset="kuhr_deliveries", blocking=False,
                description="Daily volume per service in the run against the 28 days before it (0.5x to 2x).")
def kuhr_volume_vs_recent(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    window = run_partition_range(context)
    w = warehouse.get()
    if window is None:
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"note": "unpartitioned run: nothing to compare"})
    frame = w.query("""
        SELECT c.tjeneste, SUM(CASE WHEN d.delivery_date BETWEEN :first AND :last THEN 1 ELSE 0 END) AS now_rows,
               SUM(CASE WHEN d.delivery_date < :first THEN 1 ELSE 0 END) AS before_rows
        FROM kuhr_claims c JOIN kuhr_deliveries d USING (delivery_id)
        WHERE d.delivery_date BETWEEN CAST(:first AS DATE) - 28 AND :last
        GROUP BY c.tjeneste""", first=window[0], last=window[1])
    days_now = (pd.Timestamp(window[1]) - pd.Timestamp(window[0])).days + 1
    frame["ratio"] = (frame["now_rows"] / days_now) / (frame["before_rows"] / 28).where(frame["before_rows"] > 0)
    lo, hi = VOLUME_RATIO_RANGE
    odd = frame[(frame["ratio"] < lo) | (frame["ratio"] > hi)]
    return dg.AssetCheckResult(passed=odd.empty, severity=dg.AssetCheckSeverity.WARN, metadata={
        "services_outside_range": odd["tjeneste"].tolist(),
        "ratios": dg.MetadataValue.json({r.tjeneste: None if pd.isna(r.ratio) else round(float(r.ratio), 2)
                                         for r in frame.itertuples()})})


@dg.asset_check(asset="kuhr_deliveries", blocking=False,
                description="The KUHR feed is fresh: a delivery dated within the last KPR_KUHR_STALE_DAYS days "
                "(Norwegian date). Runs with every delivery run and on its own schedule (kuhr_freshness_schedule).")
def kuhr_feed_fresh(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    settings = get_settings()
    fresh = kuhr_freshness(warehouse.get(), dt.datetime.now(OSLO).date(), settings.kuhr_stale_days)
    return dg.AssetCheckResult(
        passed=not fresh.stale, severity=dg.AssetCheckSeverity.WARN,
        description=("no KUHR delivery yet" if fresh.newest_delivery is None else
                     f"newest KUHR delivery {fresh.newest_delivery}, {fresh.days_since} days ago "
                     f"(stale after {fresh.stale_days})"),
        metadata={"newest_delivery": str(fresh.newest_delivery), "days_since": fresh.days_since,
                  "stale_days": fresh.stale_days})


kuhr_freshness_job = dg.define_asset_job("kuhr_freshness_job", selection=dg.AssetSelection.checks(kuhr_feed_fresh),
                                         description="Only the KUHR freshness check (no data is read or written).")
kuhr_checks = [claims_contract, deliveries_contract, kuhr_accounting, kuhr_no_raw_identifier, kuhr_reject_rate,
               kuhr_late_share, kuhr_gp_without_diagnosis, kuhr_volume_vs_recent, kuhr_feed_fresh]
