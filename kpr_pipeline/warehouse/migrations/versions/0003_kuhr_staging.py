"""KUHR staging tables: a delivery's rows are staged chunk by chunk in committed rows, then published
into the real tables by one INSERT ... SELECT in the delivery's final transaction. Readers never see
half a delivery, and DuckDB does not hold the whole uncommitted delivery in memory.

The staging tables copy the columns of their real tables and add ``load_id``; a migration that
changes one of the real tables changes its staging table too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STAGED = ["kuhr_claims", "kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings", "kuhr_rejected_rows"]


def upgrade() -> None:
    for table in STAGED:
        op.execute(f"CREATE TABLE stage_{table} AS SELECT * FROM {table} WHERE 1 = 0")
        op.add_column(f"stage_{table}", sa.Column("load_id", sa.String))


def downgrade() -> None:
    for table in STAGED:
        op.drop_table(f"stage_{table}")
