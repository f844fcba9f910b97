"""KUHR on PostgreSQL: block-range (BRIN) indexes for delivery and treatment month; bill number for doubles.

Claims arrive in delivery order and a delivery's rows lie together, so a BRIN index finds a delivery's
rows (to replace or count them) and a treatment month's rows (a month refresh) at almost no upkeep: one
summary per 128 pages instead of one B-tree entry per row. ``minmax_multi`` keeps the few months of a block
range apart, so a late claim in a range does not make it match every month in between. The B-trees they
replace cost a third of the time of writing a 2-million-row delivery. A B-tree on the bill number
(``regningsnummer``, 8 bytes) serves the cross-delivery lookup of suspected doubles, which share practice,
bill number, time and person; it replaces the 64-character ``pid`` B-tree, which no other query used and which
was the dearest index to keep. The diagnosis and warning tables get a BRIN index on ``delivery_id`` too, so
that replacing a delivery does not scan them whole.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BTREES = [("ix_kuhr_claims_delivery_id", "kuhr_claims", ["delivery_id"]),
          ("ix_kuhr_claims_behandlingsmaaned", "kuhr_claims", ["behandlingsmaaned"]),
          ("ix_kuhr_claim_takster_delivery_id", "kuhr_claim_takster", ["delivery_id"]),
          ("ix_kuhr_claims_pid", "kuhr_claims", ["pid"])]
BRINS = [("brin_kuhr_claims_delivery_id", "kuhr_claims", "delivery_id"),
         ("brin_kuhr_claims_behandlingsmaaned", "kuhr_claims", "behandlingsmaaned date_minmax_multi_ops"),
         ("brin_kuhr_claim_takster_delivery_id", "kuhr_claim_takster", "delivery_id"),
         ("brin_kuhr_claim_diagnoser_delivery_id", "kuhr_claim_diagnoser", "delivery_id"),
         ("brin_kuhr_warnings_delivery_id", "kuhr_warnings", "delivery_id")]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":  # DuckDB's zone maps serve these scans without indexes
        return
    for name, table, _ in BTREES:
        op.drop_index(name, table)
    for name, table, column in BRINS:
        op.execute(f"CREATE INDEX {name} ON {table} USING brin ({column}) WITH (autosummarize = on)")
    op.create_index("ix_kuhr_claims_regningsnummer", "kuhr_claims", ["regningsnummer"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_kuhr_claims_regningsnummer", "kuhr_claims")
    for name, table, _ in BRINS:
        op.drop_index(name, table)
    for name, table, columns in BTREES:
        op.create_index(name, table, columns)
