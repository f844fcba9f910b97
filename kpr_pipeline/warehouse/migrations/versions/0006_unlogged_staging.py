"""PostgreSQL: staging tables are UNLOGGED. Staged rows are transient (a crash loses them and the file is
simply loaded again), so writing them to the write-ahead log only costs time. DuckDB: nothing to do.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STAGED = ["kuhr_claims", "kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings", "kuhr_rejected_rows",
          "care_services", "care_rejected_rows", "care_warnings", "care_function_assessments", "iplos_services",
          "iplos_rejected_rows"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in STAGED:
            op.execute(f"ALTER TABLE stage_{table} SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in STAGED:
            op.execute(f"ALTER TABLE stage_{table} SET LOGGED")
