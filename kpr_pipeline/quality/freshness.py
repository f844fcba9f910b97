"""Is the KUHR feed alive? Helfo delivers every day; no delivery for more than ``KPR_KUHR_STALE_DAYS``
means something upstream stopped, and stewards and operators must hear of it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from kpr_pipeline.warehouse import Warehouse


@dataclass(frozen=True)
class Freshness:
    newest_delivery: dt.date | None  # by the manifests' delivery_date, loaded or quarantined
    days_since: int | None
    stale_days: int

    @property
    def stale(self) -> bool:
        return self.days_since is None or self.days_since > self.stale_days


def kuhr_freshness(warehouse: Warehouse, today: dt.date, stale_days: int) -> Freshness:
    newest = warehouse.query("SELECT MAX(delivery_date) AS d FROM kuhr_deliveries")["d"].iloc[0]
    newest = pd.Timestamp(newest).date() if pd.notna(newest) else None
    return Freshness(newest, None if newest is None else (today - newest).days, stale_days)
