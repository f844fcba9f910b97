"""KUHR on DuckDB: pseudonyms and bill identifiers compressed with Zstandard.

DuckDB picks a compression per column segment by trying its methods on the data; for a ``pid`` (64 random hex
characters) and a ``regning_id`` it settles on dictionary + FSST, and the trying and the FSST encoding were the
dearest part of writing a delivery. Writing those columns of 2 million claims (this machine, one column alone):
``pid`` 1.13 s and 73 MB with DuckDB's choice, 0.80 s and 77 MB with ZSTD; ``regning_id`` 0.37 s and 16 MB,
0.17 s and 13 MB. The takster and diagnosis tables repeat ``regning_id`` on every row. Reading them back costs
about the same (a ``count(DISTINCT pid)`` of 2 million claims 0.09-0.10 s against 0.10-0.12 s). Uncompressed
would be faster still, but twice the size.

DuckDB cannot change a column's compression in place, so each table is rebuilt from its own definition (its
``CREATE TABLE`` statement with ``USING COMPRESSION zstd`` added) and its rows copied over. PostgreSQL stores
these columns as it always did.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

import re

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ZSTD_COLUMNS = {"kuhr_claims": ("regning_id", "pid", "kreditert_regning_id"),
                "kuhr_claim_takster": ("regning_id",), "kuhr_claim_diagnoser": ("regning_id",)}
_HINT = " USING COMPRESSION ZSTD"


def _definition(table: str) -> str:
    """The table's ``CREATE TABLE`` statement as DuckDB keeps it."""
    return op.get_bind().exec_driver_sql(
        f"SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = '{table}'").scalar()


def _rebuild(table: str, create: str) -> None:
    """Recreate ``table`` by its ``CREATE TABLE`` statement ``create``, with its rows."""
    new = f"kpr_rebuild_{table}"
    op.execute(create.replace(f"CREATE TABLE {table}(", f"CREATE TABLE {new}(", 1))
    op.execute(f"INSERT INTO {new} SELECT * FROM {table}")
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {new} RENAME TO {table}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        return
    for table, columns in ZSTD_COLUMNS.items():
        create = _definition(table)
        for column in columns:
            create = re.sub(rf"\b{column} VARCHAR\b(?!{_HINT})", f"{column} VARCHAR{_HINT}", create)
        _rebuild(table, create)


def downgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        return
    for table in ZSTD_COLUMNS:
        _rebuild(table, _definition(table).replace(_HINT, ""))
