"""KUHR: the months each delivery touched and the per-month summary; PostgreSQL indexes for loading.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kuhr_touched_months",
        sa.Column("delivery_id", sa.String, nullable=False),
        sa.Column("treatment_month", sa.Date, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "kuhr_month_summary",
        sa.Column("treatment_month", sa.Date, nullable=False),
        sa.Column("regninger", sa.BigInteger), sa.Column("contacts", sa.BigInteger),
        sa.Column("patients", sa.BigInteger), sa.Column("credited", sa.BigInteger),
        sa.Column("credit_notes", sa.BigInteger), sa.Column("late", sa.BigInteger),
        sa.Column("suspected_double", sa.BigInteger), sa.Column("egenandel_sum", sa.Numeric(18, 2)),
        sa.Column("refusjon_sum", sa.Numeric(18, 2)), sa.Column("refreshed_at", sa.DateTime(timezone=True)),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_kuhr_claims_pid", "kuhr_claims", ["pid"])
        op.create_index("ix_kuhr_claims_kreditert_regning_id", "kuhr_claims", ["kreditert_regning_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_kuhr_claims_kreditert_regning_id", "kuhr_claims")
        op.drop_index("ix_kuhr_claims_pid", "kuhr_claims")
    op.drop_table("kuhr_month_summary")
    op.drop_table("kuhr_touched_months")
