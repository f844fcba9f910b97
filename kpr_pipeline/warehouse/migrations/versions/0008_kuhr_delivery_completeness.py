"""``kuhr_delivery_completeness``: the reporting-delay triangle per treatment month.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kuhr_delivery_completeness", sa.Column("treatment_month", sa.Date, nullable=False),
        sa.Column("delay_months", sa.Integer, nullable=False), sa.Column("regninger", sa.BigInteger, nullable=False),
        sa.Column("share_of_total", sa.Float), sa.Column("computed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_table("kuhr_delivery_completeness")
