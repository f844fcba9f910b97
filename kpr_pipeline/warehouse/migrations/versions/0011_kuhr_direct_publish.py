"""KUHR: no staging tables, a partial index on credited regninger, no index on takster by regning_id.

A delivery is checked in a private DuckDB (``ingest/kuhr_check.py``) and written straight into the KUHR tables
in its publishing transaction, so ``stage_kuhr_*`` held nothing any more. PostgreSQL's index on
``kreditert_regning_id`` covers the credit notes only (every query of it asks ``kreditering``): the NULLs of
the normal claims, 99.5 % of the rows, cost index upkeep on every load and were never looked up. No path
looks up ``kuhr_claim_takster`` by ``regning_id`` (it is read a month at a time, joined by hash), while its
index cost a third of the time of writing the table (2.4 million takster of a 2-million-row delivery).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("kuhr_claims", "kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings", "kuhr_rejected_rows")


def upgrade() -> None:
    for table in TABLES:
        op.drop_table(f"stage_{table}")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_kuhr_claims_kreditert_regning_id", "kuhr_claims")
        op.create_index("ix_kuhr_claims_kreditert_regning_id", "kuhr_claims", ["kreditert_regning_id"],
                        postgresql_where=sa.text("kreditering"))
        op.drop_index("ix_kuhr_claim_takster_regning_id", "kuhr_claim_takster")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_kuhr_claims_kreditert_regning_id", "kuhr_claims")
        op.create_index("ix_kuhr_claims_kreditert_regning_id", "kuhr_claims", ["kreditert_regning_id"])
        op.create_index("ix_kuhr_claim_takster_regning_id", "kuhr_claim_takster", ["regning_id"])
    for table in TABLES:
        op.execute(f"CREATE TABLE stage_{table} AS SELECT * FROM {table} WHERE 1 = 0")
        op.add_column(f"stage_{table}", sa.Column("load_id", sa.String))
