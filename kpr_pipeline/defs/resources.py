"""Dagster resources: the warehouse and the landing zone, built from the validated settings.

Secrets (pseudonym keys) are never resource config, because run config is stored and shown in the
UI; domain code reads them from ``kpr_pipeline.settings`` when it needs them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from pathlib import Path

import dagster as dg

from kpr_pipeline.settings import Settings
from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import WarehouseUnavailable, normalise_url

#: Concurrency pool around every asset that writes the warehouse. DuckDB allows one writing process,
#: so the instance limits this pool to 1 there (deploy/dagster.yaml); PostgreSQL may allow more.
WAREHOUSE_POOL = "kpr_warehouse"
#: A step whose warehouse went away (a restart, a failover) is run again this many times, this far apart.
OUTAGE_RETRIES = 3
OUTAGE_WAIT_SECONDS = 20


@contextlib.contextmanager
def _retried_on_outage():
    try:
        yield
    except WarehouseUnavailable as exc:
        raise dg.RetryRequested(max_retries=OUTAGE_RETRIES, seconds_to_wait=OUTAGE_WAIT_SECONDS) from exc


def warehouse_asset(**kwargs):
    """``dg.asset`` for an asset that writes the warehouse: it takes a slot of the warehouse pool, and when the
    warehouse goes away during the step (``WarehouseUnavailable``) the whole step runs again after a wait. That
    is safe: the interrupted transaction left nothing, and every asset replaces what it wrote before."""
    def decorate(fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def step(*args, **kw):
                with _retried_on_outage():
                    yield from fn(*args, **kw)
        else:
            @functools.wraps(fn)
            def step(*args, **kw):
                with _retried_on_outage():
                    return fn(*args, **kw)
        return dg.asset(pool=WAREHOUSE_POOL, **kwargs)(step)
    return decorate


@functools.lru_cache(maxsize=None)
def _warehouse(url: str) -> Warehouse:
    return Warehouse(url)


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse at ``url`` (KPR_WAREHOUSE_URL); migrations run on first use."""

    url: str

    def get(self) -> Warehouse:
        warehouse = _warehouse(normalise_url(self.url))
        warehouse.ensure_schema()
        return warehouse


class LandingZoneResource(dg.ConfigurableResource):
    """The landing zone (KPR_LANDING_DIR), the output directory (KPR_OUTPUT_DIR) and how long a municipal
    report must stay unchanged before it is ready (KPR_REPORT_SETTLE_SECONDS)."""

    landing_dir: str
    output_dir: str
    report_settle_seconds: float = 30.0

    @property
    def landing(self) -> Path:
        return Path(self.landing_dir)

    @property
    def output(self) -> Path:
        return Path(self.output_dir)


def resources_for(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(url=settings.warehouse_url),
        "landing_zone": LandingZoneResource(landing_dir=str(settings.landing_dir), output_dir=str(settings.output_dir),
                                            report_settle_seconds=settings.report_settle_seconds),
    }
