"""The partition keys of the run an asset check executes in (checks have no partition context)."""


import dagster as dg


def run_partition_range(context: dg.AssetCheckExecutionContext) -> tuple[str, str] | None:
    """(first, last) partition key of the run, or None when the run is not partitioned."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"], tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return (start, end) if start and end else None
