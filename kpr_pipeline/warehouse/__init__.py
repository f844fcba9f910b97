"""The warehouse: one SQLAlchemy code path for DuckDB (embedded) and PostgreSQL (production)."""

from kpr_pipeline.warehouse.engine import Warehouse, WarehouseError

__all__ = ["Warehouse", "WarehouseError"]
