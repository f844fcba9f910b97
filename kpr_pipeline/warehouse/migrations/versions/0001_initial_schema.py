"""Initial schema: reference tables, the landing-file registry and the tables of spec/interfaces.md.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = sa.String
I = sa.Integer
B = sa.Boolean
D = sa.Date
TS = sa.DateTime(timezone=True)
N = sa.Numeric(14, 2)
F = sa.Float


def col(name, type_, nullable=True):
    return sa.Column(name, type_, nullable=nullable)


TABLES = {
    # Reference data (replaced whole by the reference assets).
    "ref_municipalities": [col("code", S(4), False), col("name", S), col("county_code", S(2)), col("county_name", S),
                           col("valid_from", I), col("valid_to", I)],
    "ref_municipality_changes": [col("old_code", S(4), False), col("new_code", S(4), False),
                                 col("effective_year", I, False), col("weight", F, False)],
    "ref_kuhr_takster": [col("tjeneste", S, False), col("takst", S, False), col("beskrivelse", S), col("kontakt", B),
                         col("kontakttype", S), col("rang", I), col("egenandel_typisk", N), col("refusjon_typisk", N),
                         col("kilde", S)],
    "ref_tjenestekoder": [col("kode", I, False), col("navn", S), col("gruppe", S), col("enhet", S),
                          col("gyldig_fra", I), col("gyldig_til", I), col("kilde", S)],
    "ref_population": [col("year", I, False), col("kommunenummer", S(4), False), col("age", I, False),
                       col("sex", S(1), False), col("persons", I, False), col("source_file", S)],
    # Every landing file seen, by content: the sensors' source of truth for "processed once".
    "landing_files": [col("dataset", S, False), col("path", S, False), col("sha256", S(64), False),
                      col("size_bytes", sa.BigInteger), col("status", S, False), col("unit_id", S),
                      col("run_id", S), col("processed_at", TS)],
    "quarantine_events": [col("dataset", S, False), col("path", S, False), col("sha256", S(64)),
                          col("reason", sa.Text, False), col("quarantined_at", TS, False)],
    # KPR-KUHR.
    "kuhr_deliveries": [col("delivery_id", S, False), col("data_file", S), col("sha256", S(64)),
                        col("delivery_date", D), col("status", S, False), col("rows_in_file", I),
                        col("rows_loaded", I), col("rows_rejected", I), col("rows_duplicate", I),
                        col("processed_at", TS), col("reason", sa.Text)],
    "kuhr_claims": [col("regning_id", S(64), False), col("delivery_id", S, False), col("row_number", I),
                    col("regningsnummer", sa.BigInteger), col("pid", S(64), False), col("pasient_id_type", S(3)),
                    col("kjonn", S(1)), col("fodselsaar", I), col("bostedskommune", S(4)), col("praksis_id", S(10)),
                    col("praksistype", S(4)), col("tjeneste", S), col("behandler_hpr", S(9)),
                    col("praksiskommune", S(4)), col("tidspunkt", TS), col("behandlingsmaaned", D),
                    col("mottatt_dato", D), col("kreditering", B), col("kreditert_regning_id", S(64)),
                    col("fritak_egenandel", S(1)), col("egenandel", N), col("refusjon", N), col("is_contact", B),
                    col("kontakttype", S), col("hoveddiagnose", S), col("late", B), col("credited", B),
                    col("suspected_double", B)],
    "kuhr_claim_takster": [col("regning_id", S(64), False), col("delivery_id", S, False), col("takst", S, False),
                           col("antall", I, False)],
    "kuhr_claim_diagnoser": [col("regning_id", S(64), False), col("delivery_id", S, False), col("position", I),
                             col("system", S), col("kode", S)],
    "kuhr_warnings": [col("delivery_id", S, False), col("row_number", I), col("regning_id", S(64)),
                      col("reason", S, False)],
    "kuhr_rejected_rows": [col("delivery_id", S, False), col("row_number", I, False), col("reasons", S, False),
                           col("message", sa.Text), col("record", sa.Text)],
    # KPR-helse og omsorg.
    "care_submissions": [col("reporting_year", I, False), col("kommunenummer", S(4), False), col("data_file", S, False),
                         col("sha256", S(64)), col("uttrekkstidspunkt", TS), col("status", S, False),
                         col("persons", I), col("services", I), col("rows_rejected", I), col("late", B),
                         col("processed_at", TS), col("reason", sa.Text)],
    "care_services": [col("reporting_year", I, False), col("kommunenummer", S(4), False), col("data_file", S),
                      col("pid", S(64), False), col("kjonn", S(1)), col("fodselsaar", I),
                      col("bostedskommune", S(4)), col("tjenestekode", I), col("fra_dato", D), col("til_dato", D),
                      col("timer_per_uke", F), col("iplos_pseudonym", S(64))],
    "care_rejected_rows": [col("reporting_year", I, False), col("kommunenummer", S(4)), col("data_file", S),
                           col("pid", S(64)), col("reasons", S, False), col("message", sa.Text)],
    # IPLOS.
    "iplos_extracts": [col("reporting_year", I, False), col("data_file", S), col("sha256", S(64)),
                       col("status", S, False), col("rows_in_file", I), col("rows_loaded", I),
                       col("rows_rejected", I), col("processed_at", TS), col("reason", sa.Text)],
    "iplos_services": [col("reporting_year", I, False), col("kommunenummer", S(4)), col("pseudonym", S(64)),
                       col("kjonn", S(1)), col("fodselsaar", I), col("tjenestekode", I), col("fra_dato", D),
                       col("til_dato", D), col("timer_per_uke", F)],
    "iplos_rejected_rows": [col("reporting_year", I, False), col("row_number", I), col("reasons", S, False),
                            col("message", sa.Text), col("record", sa.Text)],
}

POSTGRES_INDEXES = {
    "kuhr_claims": [["delivery_id"], ["regning_id"], ["behandlingsmaaned"]],
    "kuhr_claim_takster": [["delivery_id"], ["regning_id"]],
    "kuhr_rejected_rows": [["delivery_id"]],
    "landing_files": [["dataset", "path"]],
    "care_services": [["reporting_year", "kommunenummer"]],
}


def upgrade() -> None:
    for name, columns in TABLES.items():
        op.create_table(name, *columns)
    if op.get_bind().dialect.name == "postgresql":  # DuckDB's zone maps serve these scans without indexes
        for table, indexes in POSTGRES_INDEXES.items():
            for columns in indexes:
                op.create_index(f"ix_{table}_{'_'.join(columns)}", table, columns)


def downgrade() -> None:
    for name in reversed(list(TABLES)):
        op.drop_table(name)
