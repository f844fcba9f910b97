"""Statistics assets. Each is partitioned like its input and refreshed when that input's partition changes
(eager automation; ``kuhr_month_job`` also runs them with the months), so nothing else is recomputed."""


import datetime as dt

import dagster as dg

from kpr_pipeline.defs.kuhr.partitions import treatment_month_partitions
from kpr_pipeline.defs.resources import WAREHOUSE_POOL, WarehouseResource
from kpr_pipeline.statistics import delivery_completeness

GROUP = "statistics"


@dg.asset(
    group_name=GROUP,
    partitions_def=treatment_month_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["kuhr_treatment_months"],
    pool=WAREHOUSE_POOL,
    kinds={"sql"},
    automation_condition=dg.AutomationCondition.eager(),
    description="The reporting-delay triangle: per treatment month, counted regninger by months of delay (0-6, "
    "6 = 6 or more) and the cumulative share of the month's current total.",
)
def kuhr_delivery_completeness(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    months = sorted(dt.date.fromisoformat(k[:10]) for k in context.partition_keys)
    table = delivery_completeness.compute(warehouse.get(), months[0], months[-1])
    within = table[table["delay_months"] == 0]["share_of_total"]
    return dg.MaterializeResult(metadata={
        "months": len(months), "regninger": int(table["regninger"].sum()),
        "median_share_in_treatment_month": float(within.median()) if within.notna().any() else None,
    })
