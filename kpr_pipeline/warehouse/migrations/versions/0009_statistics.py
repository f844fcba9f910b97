"""The statistics of spec/statistics.md on current borders, their geography tables, and the publication log.

``geography_*`` hold the current division and, per year, which unit each code is counted in, so the
statistics map codes in SQL (one code path for DuckDB and PostgreSQL). The statistics tables hold
unsuppressed counts (the warehouse is access-controlled); ``publication_log`` records what each
publication run wrote and how many cells disclosure control suppressed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S, I, BI, B, F, N, D = sa.String, sa.Integer, sa.BigInteger, sa.Boolean, sa.Float, sa.Numeric(18, 2), sa.Date
TS = sa.DateTime(timezone=True)


def col(name, type_, nullable=True):
    return sa.Column(name, type_, nullable=nullable)


def provenance():
    return [col("split_suppressed", B, False), col("split_policy", S, False), col("computed_at", TS)]


TABLES = {
    "geography_units": [col("code", S(4), False), col("level", S, False), col("county", S(2)),
                        col("split_policy", S, False)],
    "geography_code_units": [col("year", I, False), col("code", S(4), False), col("unit", S(4), False),
                             col("county", S(2)), col("split_policy", S, False)],
    "geography_split_weights": [col("year", I, False), col("unit", S(4), False), col("current_code", S(4), False),
                                col("weight", F, False), col("suppressed", B, False), col("split_policy", S, False)],
    "kuhr_contacts_monthly": [col("treatment_month", D, False), col("kommunenummer", S(4), False),
                              col("tjeneste", S, False), col("kontakttype", S, False), col("kjonn", S(1), False),
                              col("age_group", S, False), col("contacts", BI), col("patients", BI),
                              col("regninger", BI), col("egenandel_sum", N), col("refusjon_sum", N), *provenance()],
    "kuhr_contacts_annual": [col("year", I, False), col("kommunenummer", S(4), False), col("tjeneste", S, False),
                             col("kjonn", S(1), False), col("age_group", S, False), col("contacts", BI),
                             col("consultations", BI), col("patients", BI), col("patients_consultation", BI),
                             col("regninger", BI), col("population", BI), col("population_imputed", B),
                             col("contacts_per_inhabitant", F), col("consultations_per_inhabitant", F),
                             col("share_with_contact", F), col("share_with_consultation", F),
                             col("preliminary", B, False), *provenance()],
    "care_users_annual": [col("year", I, False), col("kommunenummer", S(4), False), col("tjenestegruppe", S, False),
                          col("tjenestekode", I), col("kjonn", S(1), False), col("age_group", S, False),
                          col("users_during_year", BI), col("users_dec31", BI), col("users_67plus", BI),
                          col("users_80plus", BI), col("population", BI), col("population_67plus", BI),
                          col("population_80plus", BI), col("population_imputed", B), col("users_per_1000", F),
                          col("users_per_1000_67plus", F), col("users_per_1000_80plus", F),
                          col("users_with_hours_dec31", BI), col("hours_per_week_sum", F),
                          col("mean_hours_per_week", F), col("days", BI),
                          col("source", S, False), col("preliminary", B, False), *provenance()],
    "care_gp_contacts": [col("year", I, False), col("kommunenummer", S(4), False), col("tjenestegruppe", S, False),
                         col("users", BI), col("users_with_gp_contact", BI), col("gp_contacts", BI),
                         col("gp_contacts_per_user", F), col("preliminary", B, False), *provenance()],
    "publication_log": [col("table_name", S, False), col("file", S, False), col("rows", BI, False),
                        col("cells", BI, False), col("cells_primary", BI, False),
                        col("cells_complementary", BI, False), col("threshold", I, False),
                        col("split_policy", S, False), col("published_at", TS, False)],
}

POSTGRES_INDEXES = {
    "kuhr_contacts_monthly": ["treatment_month"], "kuhr_contacts_annual": ["year"],
    "care_users_annual": ["year", "source"], "care_gp_contacts": ["year"],
    "geography_code_units": ["year", "code"],
}


def upgrade() -> None:
    for name, columns in TABLES.items():
        op.create_table(name, *columns)
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in POSTGRES_INDEXES.items():
            op.create_index(f"ix_{table}_{'_'.join(columns)}", table, columns)


def downgrade() -> None:
    for name in reversed(list(TABLES)):
        op.drop_table(name)
