"""Alerts for operators and stewards: failed runs and failed checks, one row each.

Written by the alert sensors (``kpr_pipeline.quality.alerts``); a webhook post is optional, the row
is not. ``source_key`` identifies what the alert is about (a run id, or a check evaluation's event
id), so a sensor tick repeated after an interruption does not record it twice.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("source_key", sa.String, nullable=False, unique=True),
        sa.Column("kind", sa.String, nullable=False),  # run_failure, check_failure, check_warning
        sa.Column("severity", sa.String, nullable=False),  # ERROR, WARN
        sa.Column("subject", sa.String, nullable=False),  # job name, or asset and check
        sa.Column("partition", sa.String),
        sa.Column("run_id", sa.String),
        sa.Column("message", sa.String, nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("webhook_status", sa.String),  # not_configured, delivered, failed: <reason>
    )


def downgrade() -> None:
    op.drop_table("alerts")
