"""The partition keys of the run an asset check executes in (checks have no partition context)."""


import datetime as dt

import dagster as dg


def run_partition_range(context: dg.AssetCheckExecutionContext) -> tuple[str, str] | None:
    """(first, last) partition key of the run, or None when the run is not partitioned."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"], tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return (start, end) if start and end else None


def partition_years(context) -> list[int]:
    """The years of a yearly (or static year) partitioned run, in order."""
    return sorted(int(k[:4]) for k in context.partition_keys)


def partition_months(context) -> list[dt.date]:
    """The first days of a monthly partitioned run's months, in order."""
    return sorted(dt.date.fromisoformat(k[:10]) for k in context.partition_keys)
