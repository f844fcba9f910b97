"""``kuhr_delivery_completeness``: the reporting-delay triangle (spec/statistics.md, item 3).

Per treatment month, the counted regninger (no credit notes, none that a credit note annulled) by
delay: whole months from the treatment month to the month of ``mottatt_dato``, 0..6 where 6 means
6 or more; ``share_of_total`` is the cumulative share of the month's current total received with a
delay up to and including that one, so a user sees how complete a month is. Every month gets all
seven delays (zero-filled); the share of a month without regninger is empty, never 0.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert

MAX_DELAY = 6

COUNTS_SQL = f"""
SELECT behandlingsmaaned AS treatment_month,
       LEAST((EXTRACT(YEAR FROM mottatt_dato) * 12 + EXTRACT(MONTH FROM mottatt_dato))
             - (EXTRACT(YEAR FROM behandlingsmaaned) * 12 + EXTRACT(MONTH FROM behandlingsmaaned)), {MAX_DELAY})
           AS delay_months,
       COUNT(*) AS regninger
FROM kuhr_claims
WHERE NOT kreditering AND NOT credited AND behandlingsmaaned BETWEEN :first AND :last
GROUP BY 1, 2
"""


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    out, month = [], first.replace(day=1)
    while month <= last:
        out.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return out


def compute(warehouse: Warehouse, first: dt.date, last: dt.date) -> pd.DataFrame:
    """Recompute the treatment months ``first``..``last`` (first days) in one transaction; return the rows."""
    months = months_between(first, last)
    grid = pd.MultiIndex.from_product([months, range(MAX_DELAY + 1)], names=["treatment_month", "delay_months"])
    with warehouse.begin() as conn:
        counts = Warehouse.query_in(conn, COUNTS_SQL, first=months[0], last=months[-1])
        counts["treatment_month"] = pd.to_datetime(counts["treatment_month"]).dt.date
        counts["delay_months"] = counts["delay_months"].astype(int)
        table = (counts.set_index(["treatment_month", "delay_months"])["regninger"].reindex(grid, fill_value=0)
                 .astype("int64").reset_index())
        cumulative = table.groupby("treatment_month")["regninger"].cumsum()
        total = table.groupby("treatment_month")["regninger"].transform("sum")
        table["share_of_total"] = (cumulative / total.where(total > 0)).astype(float)
        table["computed_at"] = dt.datetime.now(dt.timezone.utc)
        conn.execute(sa.text("DELETE FROM kuhr_delivery_completeness WHERE treatment_month BETWEEN :a AND :b"),
                     {"a": months[0], "b": months[-1]})
        bulk_insert(conn, "kuhr_delivery_completeness", table)
    return table
