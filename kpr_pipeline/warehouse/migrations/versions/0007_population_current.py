"""Population denominators on current municipality borders (spec/statistics.md, Population denominators).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "population_current", sa.Column("year", sa.Integer, nullable=False),
        sa.Column("kommunenummer", sa.String(4), nullable=False), sa.Column("age", sa.Integer, nullable=False),
        sa.Column("sex", sa.String(1), nullable=False), sa.Column("persons", sa.Integer),
        sa.Column("imputed", sa.Boolean, nullable=False), sa.Column("suppressed", sa.Boolean, nullable=False),
        sa.Column("split_policy", sa.String, nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_population_current_year_kommune", "population_current", ["year", "kommunenummer"])


def downgrade() -> None:
    op.drop_table("population_current")
