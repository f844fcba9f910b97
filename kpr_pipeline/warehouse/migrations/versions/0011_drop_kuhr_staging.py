"""KUHR: no staging tables. A delivery is checked in a private DuckDB (``ingest/kuhr_check.py``) and written
straight into the KUHR tables in its publishing transaction, so ``stage_kuhr_*`` held nothing any more.

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


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"CREATE TABLE stage_{table} AS SELECT * FROM {table} WHERE 1 = 0")
        op.add_column(f"stage_{table}", sa.Column("load_id", sa.String))
