"""KPR-helse og omsorg: submission accounting, warnings, function assessments, completeness, gaps.

``care_submissions.kommunenummer`` becomes nullable: a report whose file name cannot be read is
still recorded (quarantined) under its reporting-year folder. Rejected rows and warnings get the
position of the person (and service) in the file, so a steward can find the element. Staging
tables follow the pattern of 0003.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S, I, B, D, F, TS = sa.String, sa.Integer, sa.Boolean, sa.Date, sa.Float, sa.DateTime(timezone=True)
FUNCTION_VARIABLES = [
    "sosial_deltakelse", "beslutninger_i_dagliglivet", "styre_atferd", "alminnelig_husarbeid",
    "skaffe_varer_og_tjenester", "personlig_hygiene", "ivareta_egen_helse", "kle_av_og_paa_seg", "spise",
    "lage_mat", "bevege_seg_innendors", "bevege_seg_utendors", "toalett", "hukommelse", "kommunikasjon", "syn",
    "horsel",
]
STAGED = ["care_services", "care_rejected_rows", "care_warnings", "care_function_assessments"]


def upgrade() -> None:
    op.alter_column("care_submissions", "kommunenummer", existing_type=S(4), nullable=True)
    for name, type_ in (("persons_rejected", I), ("services_loaded", I), ("services_rejected", I),
                        ("services_merged", I), ("services_person_rejected", I), ("fagsystem", S)):
        op.add_column("care_submissions", sa.Column(name, type_))
    for name, type_ in (("person_index", I), ("service_index", I), ("record", sa.Text)):
        op.add_column("care_rejected_rows", sa.Column(name, type_))
    op.add_column("care_services", sa.Column("person_index", I))
    op.add_column("care_services", sa.Column("service_index", I))
    op.create_table(
        "care_warnings", sa.Column("reporting_year", I, nullable=False), sa.Column("kommunenummer", S(4)),
        sa.Column("data_file", S), sa.Column("pid", S(64)), sa.Column("person_index", I),
        sa.Column("service_index", I), sa.Column("reason", S, nullable=False))
    op.create_table(
        "care_function_assessments", sa.Column("reporting_year", I, nullable=False),
        sa.Column("kommunenummer", S(4), nullable=False), sa.Column("data_file", S), sa.Column("pid", S(64), nullable=False),
        sa.Column("dato", D), *[sa.Column(v, sa.SmallInteger) for v in FUNCTION_VARIABLES])
    op.create_table(
        "care_gap_acceptances", sa.Column("reporting_year", I, nullable=False),
        sa.Column("kommunenummer", S(4), nullable=False), sa.Column("accepted_by", S, nullable=False),
        sa.Column("reason", sa.Text, nullable=False), sa.Column("accepted_at", TS, nullable=False))
    op.create_table(
        "care_completeness", sa.Column("reporting_year", I, nullable=False),
        sa.Column("kommunenummer", S(4), nullable=False), sa.Column("expected", B), sa.Column("status", S, nullable=False),
        sa.Column("submissions", I), sa.Column("quarantined", I), sa.Column("first_submitted", TS),
        sa.Column("current_submitted", TS), sa.Column("late", B), sa.Column("persons", I), sa.Column("services", I),
        sa.Column("rows_rejected", I), sa.Column("users", I), sa.Column("users_previous_year", I),
        sa.Column("users_change", F), sa.Column("evaluated_at", TS))
    op.create_table(
        "care_reporting_years", sa.Column("reporting_year", I, nullable=False), sa.Column("expected", I),
        sa.Column("submitted", I), sa.Column("late", I), sa.Column("missing", I), sa.Column("accepted_gaps", I),
        sa.Column("persons_in_two_municipalities", I),
        sa.Column("deadline", TS), sa.Column("deadline_passed", B), sa.Column("final", B),
        sa.Column("evaluated_at", TS))
    for table in STAGED:
        op.execute(f"CREATE TABLE stage_{table} AS SELECT * FROM {table} WHERE 1 = 0")
        op.add_column(f"stage_{table}", sa.Column("load_id", S))
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_care_services_pid", "care_services", ["pid"])
        op.create_index("ix_care_rejected_rows_data_file", "care_rejected_rows", ["data_file"])
        op.create_index("ix_care_submissions_year_kommune", "care_submissions", ["reporting_year", "kommunenummer"])
        for table in STAGED:
            op.create_index(f"ix_stage_{table}_load_id", f"stage_{table}", ["load_id"])


def downgrade() -> None:
    for table in STAGED:
        op.drop_table(f"stage_{table}")
    for table in ("care_reporting_years", "care_completeness", "care_gap_acceptances", "care_function_assessments",
                  "care_warnings"):
        op.drop_table(table)
    op.drop_column("care_services", "service_index")
    op.drop_column("care_services", "person_index")
    for name in ("record", "service_index", "person_index"):
        op.drop_column("care_rejected_rows", name)
    for name in ("fagsystem", "services_person_rejected", "services_merged", "services_rejected", "services_loaded", "persons_rejected"):
        op.drop_column("care_submissions", name)
    op.alter_column("care_submissions", "kommunenummer", existing_type=S(4), nullable=False)
