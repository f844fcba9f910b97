"""KUHR on PostgreSQL: bill identifiers compare byte by byte (collation "C").

``regning_id`` and ``kreditert_regning_id`` are opaque codes: a locale orders them no better than their
bytes, and every comparison in their B-trees cost a locale-aware string comparison. Keeping the
``regning_id`` index of 2 million new claims took 2.0 s with the database's collation and 1.6 s with "C"
(``INSERT ... SELECT``, this machine). Every column a bill identifier is compared with gets the same
collation, because PostgreSQL will not compare two columns of different collations; the lookup table of
``warehouse.engine.fill_lookup`` is made the same way. DuckDB compares bytes already.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BILL_ID_COLUMNS = [("kuhr_claims", "regning_id"), ("kuhr_claims", "kreditert_regning_id"),
                   ("kuhr_claim_takster", "regning_id"), ("kuhr_claim_diagnoser", "regning_id"),
                   ("kuhr_warnings", "regning_id")]


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in BILL_ID_COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR(64) COLLATE {collation}')


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')
