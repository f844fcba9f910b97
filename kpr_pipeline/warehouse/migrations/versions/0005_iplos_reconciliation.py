"""IPLOS extracts and the 2017 reconciliation; one care series 2007 onward.

``iplos_services`` gets the extract's row number and the 17 function variables (``f_*``, as in the
extract); staging tables follow 0003. ``reconciliation_2017`` holds counts only. The view
``care_series`` is the one care series: IPLOS for 2007-2017 and KPR from 2017 (2017 from both, so
the break can be shown), each with its own person key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S, I, F = sa.String, sa.Integer, sa.Float
FUNCTION_COLUMNS = [
    "f_sosial_deltakelse", "f_beslutninger_i_dagliglivet", "f_styre_atferd", "f_alminnelig_husarbeid",
    "f_skaffe_varer_og_tjenester", "f_personlig_hygiene", "f_ivareta_egen_helse", "f_kle_av_og_paa_seg", "f_spise",
    "f_lage_mat", "f_bevege_seg_innendors", "f_bevege_seg_utendors", "f_toalett", "f_hukommelse", "f_kommunikasjon",
    "f_syn", "f_horsel",
]
STAGED = ["iplos_services", "iplos_rejected_rows"]
CARE_SERIES = """
CREATE VIEW care_series AS
SELECT reporting_year AS year, 'IPLOS' AS source, kommunenummer, pseudonym AS person_key, kjonn, fodselsaar,
       tjenestekode, fra_dato, til_dato, timer_per_uke
FROM iplos_services
UNION ALL
SELECT reporting_year AS year, 'KPR' AS source, kommunenummer, pid AS person_key, kjonn, fodselsaar,
       tjenestekode, fra_dato, til_dato, timer_per_uke
FROM care_services
"""


def upgrade() -> None:
    op.add_column("iplos_services", sa.Column("row_number", I))
    for name in FUNCTION_COLUMNS:
        op.add_column("iplos_services", sa.Column(name, sa.SmallInteger))
    op.create_table(
        "reconciliation_2017", sa.Column("kommunenummer", S(4), nullable=False), sa.Column("tjenestekode", I),
        sa.Column("persons_kpr", I), sa.Column("persons_iplos", I), sa.Column("persons_both", I),
        sa.Column("persons_only_kpr", I), sa.Column("persons_only_iplos", I), sa.Column("decisions_kpr", I),
        sa.Column("decisions_iplos", I), sa.Column("decisions_matched", I), sa.Column("mean_start_diff_days", F),
        sa.Column("mean_end_diff_days", F), sa.Column("mean_hours_diff", F), sa.Column("match_rate", F),
        sa.Column("computed_at", sa.DateTime(timezone=True)))
    for table in STAGED:
        op.execute(f"CREATE TABLE stage_{table} AS SELECT * FROM {table} WHERE 1 = 0")
        op.add_column(f"stage_{table}", sa.Column("load_id", S))
    op.execute(CARE_SERIES)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_iplos_services_year", "iplos_services", ["reporting_year"])
        op.create_index("ix_iplos_rejected_rows_year", "iplos_rejected_rows", ["reporting_year"])


def downgrade() -> None:
    op.execute("DROP VIEW care_series")
    for table in STAGED:
        op.drop_table(f"stage_{table}")
    op.drop_table("reconciliation_2017")
    for name in reversed(["row_number", *FUNCTION_COLUMNS]):
        op.drop_column("iplos_services", name)
