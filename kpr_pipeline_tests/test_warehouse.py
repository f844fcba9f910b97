"""The warehouse layer on both engines: migrations, bulk loads, transactions."""

import datetime as dt
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from kpr_pipeline.warehouse import Warehouse, WarehouseError
from kpr_pipeline.warehouse.engine import bulk_insert
from kpr_pipeline.warehouse.migrate import current_revision

SPEC_TABLES = [
    "kuhr_deliveries", "kuhr_claims", "kuhr_claim_takster", "kuhr_warnings", "kuhr_rejected_rows", "care_submissions",
    "care_services", "care_rejected_rows", "iplos_extracts", "iplos_services", "iplos_rejected_rows",
    "quarantine_events",
]


def test_migrations_create_the_spec_tables_and_are_idempotent(warehouse):
    names = set(sa.inspect(warehouse.engine).get_table_names())
    assert set(SPEC_TABLES) <= names
    assert current_revision(warehouse.engine) == "0014"
    again = Warehouse(warehouse.url)
    again.ensure_schema()
    assert current_revision(again.engine) == "0014"
    again.dispose()
    if not warehouse.is_duckdb:  # bill ids compare byte by byte (0013), and the lookup table as they do
        collations = warehouse.query("SELECT DISTINCT collation_name FROM information_schema.columns "
                                     "WHERE column_name IN ('regning_id', 'kreditert_regning_id')")
        assert collations["collation_name"].tolist() == ["C"]


def test_zstd_migration_keeps_the_rows_of_the_tables_it_rebuilds(warehouse_url):
    """0014 rebuilds the KUHR tables on DuckDB with ZSTD for pseudonyms and bill ids; their rows and constraints
    come along, and the downgrade rebuilds them as they were. On PostgreSQL it changes nothing. (The engine is
    used directly: the warehouse's own methods would upgrade it to the newest revision first.)"""
    from kpr_pipeline.warehouse.migrate import downgrade, upgrade

    engine = Warehouse(warehouse_url).engine
    duckdb = engine.dialect.name == "duckdb"

    def query(sql: str) -> list[tuple]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

    def compressed() -> set[tuple[str, str]]:
        if not duckdb:
            return set()
        return {(table, column) for table, sql in query("SELECT table_name, sql FROM duckdb_tables()")
                for column in re.findall(r"\b(\w+) VARCHAR USING COMPRESSION ZSTD\b", sql)}

    upgrade(engine, "0013")
    with engine.begin() as conn:
        bulk_insert(conn, "kuhr_claims", pd.DataFrame([{"regning_id": "r1", "delivery_id": "d1", "pid": "a" * 64,
                                                          "kreditering": False}]))
        bulk_insert(conn, "kuhr_claim_takster", pd.DataFrame([{"regning_id": "r1", "delivery_id": "d1", "takst": "2ad",
                                                                 "antall": 1}]))
    assert compressed() == set()
    upgrade(engine)
    assert current_revision(engine) == "0014"
    expected = {("kuhr_claims", "regning_id"), ("kuhr_claims", "pid"), ("kuhr_claims", "kreditert_regning_id"),
                ("kuhr_claim_takster", "regning_id"), ("kuhr_claim_diagnoser", "regning_id")}
    assert compressed() == (expected if duckdb else set())
    assert query("SELECT regning_id, pid, kreditering FROM kuhr_claims") == [("r1", "a" * 64, False)]
    assert query("SELECT takst, antall FROM kuhr_claim_takster") == [("2ad", 1)]
    with pytest.raises(sa.exc.DBAPIError, match="(?i)null"):  # the constraints came along
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO kuhr_claims (regning_id, delivery_id) VALUES ('r2', 'd1')"))
    downgrade(engine, "0013")
    assert compressed() == set()
    assert query("SELECT regning_id, pid FROM kuhr_claims") == [("r1", "a" * 64)]
    engine.dispose()


def test_bulk_insert_round_trip_keeps_types(warehouse):
    frame = pd.DataFrame({
        "delivery_id": ["d1", "d2"],
        "data_file": ["a;b.csv.gz", 'quote"and,comma'],
        "sha256": ["0" * 64, "1" * 64],
        "delivery_date": [dt.date(2024, 3, 15), dt.date(2024, 3, 16)],
        "status": ["loaded", "quarantined"],
        "rows_in_file": [10, None],
        "rows_loaded": [9, 0],
        "rows_rejected": [1, 0],
        "rows_duplicate": [0, 0],
        "processed_at": pd.to_datetime(["2024-03-15T02:10:00+01:00", "2024-03-16T02:10:00+01:00"], utc=True),
        "reason": [None, "checksum_mismatch"],
    })
    frame["rows_in_file"] = frame["rows_in_file"].astype("Int64")
    with warehouse.begin() as conn:
        assert bulk_insert(conn, "kuhr_deliveries", frame) == 2
    back = warehouse.query("SELECT * FROM kuhr_deliveries ORDER BY delivery_id")
    assert list(back["data_file"]) == ["a;b.csv.gz", 'quote"and,comma']
    assert pd.isna(back.loc[1, "rows_in_file"]) and back.loc[0, "rows_in_file"] == 10
    assert pd.isna(back.loc[0, "reason"]) and back.loc[1, "reason"] == "checksum_mismatch"
    assert str(back.loc[0, "delivery_date"])[:10] == "2024-03-15"


def test_a_failed_unit_of_work_leaves_nothing(warehouse):
    frame = pd.DataFrame({"dataset": ["kuhr"], "path": ["x"], "sha256": ["0" * 64], "status": ["loaded"]})
    with pytest.raises(RuntimeError):
        with warehouse.begin() as conn:
            bulk_insert(conn, "landing_files", frame)
            raise RuntimeError("crash in the middle")
    assert warehouse.scalar("SELECT COUNT(*) FROM landing_files") == 0


def test_unreachable_warehouse_fails_with_one_sentence_naming_the_setting():
    w = Warehouse("postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(WarehouseError) as err:
        w.ensure_schema()
    assert "KPR_WAREHOUSE_URL" in str(err.value) and "secret" not in str(err.value)


def test_the_newest_revision_is_known_without_alembic(warehouse):
    """``is_current`` compares the version table with the newest file name: every migration file must hold the
    revision its name begins with, and the newest must be Alembic's head."""
    from alembic.script import ScriptDirectory

    from kpr_pipeline.warehouse.migrate import MIGRATIONS_DIR, alembic_config, head_revision, is_current

    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        assert re.search(r'^revision = "(\d{4})"$', path.read_text(), re.M).group(1) == path.name[:4], path.name
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert is_current(warehouse.engine)
    with warehouse.begin() as conn:
        conn.execute(sa.text("UPDATE kpr_schema_version SET version_num = '0012'"))
    assert not is_current(warehouse.engine)
