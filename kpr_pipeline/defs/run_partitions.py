"""Partition ranges of runs: what a check's run covers, and one run per contiguous range of partitions.

A run over a range of partitions carries Dagster's range tags (what a single-run backfill sets); the
assets read ``context.partition_keys``. Sensors and ``kpr-pipeline run`` request ranges instead of one
run per partition: each run pays for a process and its imports, and a backlog of a thousand delivery
dates must not become a thousand runs.
"""


import datetime as dt

import dagster as dg

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
PARTITION = "dagster/partition"


def range_tags(first: str, last: str) -> dict[str, str]:
    return {RANGE_START: first, RANGE_END: last}


def run_partition_range(context: dg.AssetCheckExecutionContext) -> tuple[str, str] | None:
    """(first, last) partition key of the run, or None when the run is not partitioned."""
    tags = context.run.tags
    if PARTITION in tags:
        return tags[PARTITION], tags[PARTITION]
    start, end = tags.get(RANGE_START), tags.get(RANGE_END)
    return (start, end) if start and end else None


def contiguous_ranges(keys, partitions_def: dg.PartitionsDefinition,
                      max_length: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(``keys`` as (first, last) ranges of adjacent partitions, none longer than ``max_length`` partitions;
    the keys that are not partitions of ``partitions_def``, so that the caller can say so)."""
    order = {k: i for i, k in enumerate(partitions_def.get_partition_keys())}
    positions = sorted({order[k] for k in keys if k in order})
    ranges: list[list[int]] = []
    for p in positions:
        if ranges and p == ranges[-1][1] + 1 and p - ranges[-1][0] < max_length:
            ranges[-1][1] = p
        else:
            ranges.append([p, p])
    names = list(order)
    return [(names[a], names[b]) for a, b in ranges], sorted(k for k in set(keys) if k not in order)


def partition_range_request(first: str, last: str, run_key: str, **kwargs) -> dg.RunRequest:
    """One run over first..last (a single partition is requested as such)."""
    if first == last:
        return dg.RunRequest(run_key=run_key, partition_key=first, **kwargs)
    tags = {**kwargs.pop("tags", {}), **range_tags(first, last)}
    return dg.RunRequest(run_key=run_key, tags=tags, **kwargs)


def partition_years(context) -> list[int]:
    """The years of a yearly (or static year) partitioned run, in order."""
    return sorted(int(k[:4]) for k in context.partition_keys)


def partition_months(context) -> list[dt.date]:
    """The first days of a monthly partitioned run's months, in order."""
    return sorted(dt.date.fromisoformat(k[:10]) for k in context.partition_keys)
