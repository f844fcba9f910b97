"""Rows of one landing file waiting for publication in the file's one transaction.

They are kept in memory and spilled to committed ``stage_<table>`` rows under a load id beyond
``SPILL_ROWS`` (so a very large file does not hold memory); ``publish`` appends them to the real
tables inside the caller's transaction, ``discard`` removes whatever was spilled.
"""

from __future__ import annotations

import uuid

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpr_pipeline.warehouse import Warehouse
from kpr_pipeline.warehouse.engine import bulk_insert, table_columns

SPILL_ROWS = 200_000


class PendingRows:
    """Rows of one report waiting for publication: in memory, spilled to ``stage_*`` beyond ``SPILL_ROWS``."""

    def __init__(self, warehouse: Warehouse, tables: tuple[str, ...]):
        self.warehouse, self.tables = warehouse, tables
        self.load_id = uuid.uuid4().hex
        self.frames: dict[str, list[pd.DataFrame]] = {t: [] for t in tables}
        self.rows = 0
        self.spilled = False

    def add(self, table: str, frame: pd.DataFrame) -> None:
        if len(frame):
            self.frames[table].append(frame)
            self.rows += len(frame)
        if self.rows >= SPILL_ROWS:
            self.spill()

    def spill(self) -> None:
        with self.warehouse.begin() as conn:
            for table, frames in self.frames.items():
                if frames:
                    bulk_insert(conn, f"stage_{table}", pd.concat(frames, ignore_index=True).assign(load_id=self.load_id))
                    frames.clear()
        self.rows, self.spilled = 0, True

    def publish(self, conn: Connection, table: str) -> None:
        """Append the table's pending rows inside the caller's transaction."""
        if self.spilled:
            columns = ", ".join(table_columns(conn, table))
            conn.execute(sa.text(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM stage_{table} "
                                 "WHERE load_id = :l"), {"l": self.load_id})
        if self.frames[table]:
            bulk_insert(conn, table, pd.concat(self.frames[table], ignore_index=True))

    def discard(self) -> None:
        self.frames = {t: [] for t in self.tables}
        if self.spilled:
            with self.warehouse.begin() as conn:
                for table in self.tables:
                    conn.execute(sa.text(f"DELETE FROM stage_{table} WHERE load_id = :l"), {"l": self.load_id})
