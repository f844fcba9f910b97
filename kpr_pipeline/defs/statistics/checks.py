"""Checks on the statistics: totals consistent with their inputs."""


import dagster as dg

from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.defs.run_partitions import run_partition_range


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


statistics_checks = [delivery_completeness_adds_up]
