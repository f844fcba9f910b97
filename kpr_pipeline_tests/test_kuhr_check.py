"""The KPR-KUHR check in DuckDB numbers rows in the file's order."""

import gzip
import re

import pytest

from kpr_pipeline.domain.kuhr import format as fmt
from kpr_pipeline.domain.kuhr import rules
from kpr_pipeline.ingest.kuhr_check import DeliveryCheck

ROWS = 400_000  # several of DuckDB's row groups, read by more than one thread


def _write(path, rows: int) -> list[str]:
    ids = [f"r{i:07d}-{(i * 7919) % 100_003:06d}" for i in range(rows)]
    other = ";".join(["x"] * (len(fmt.REQUIRED_COLUMNS) - 1))
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", **({"compresslevel": 1} if path.name.endswith(".gz") else {})) as out:
        out.write(";".join(fmt.REQUIRED_COLUMNS) + "\n")
        out.writelines(f"{i};{other}\n" for i in ids)
    return ids


@pytest.mark.parametrize("name", ["kuhr_20190301_001.csv.gz", "kuhr_20190301_001.csv"])
def test_checked_rows_keep_their_file_row_numbers(tmp_path, name):
    """A gzip file is read by one thread, a plain one by several; both keep the order in ``delivery_rows``."""
    path = tmp_path / name
    ids = _write(path, ROWS)
    with DeliveryCheck("k", False, "2019-03-01") as check:
        assert check.read(path, nul_bytes=True) == ROWS
        stored = check.con.execute("SELECT row_number, regning_id FROM checked ORDER BY row_number").fetchall()
    assert [r[0] for r in stored] == list(range(1, ROWS + 1))
    assert [r[1] for r in stored] == ids


def test_the_reading_pass_is_planned_without_joins_or_aggregates():
    """Order is kept only by scans, filters and projections: a join (DuckDB turns a long IN list into one)
    or an aggregate could reorder rows and give them the wrong numbers."""
    with DeliveryCheck("k", True, "2019-03-01") as check:
        columns = [*fmt.REQUIRED_COLUMNS, "fritak_egenandel", "extra"]
        check.con.execute(f"CREATE TABLE src AS SELECT {', '.join(f'NULL::VARCHAR AS {rules.q(c)}' for c in columns)}")
        for nul_bytes in (False, True):
            plan = check.con.execute("EXPLAIN " + rules.rows_select(columns, "src", True, nul_bytes)).fetchall()[0][1]
            operators = set(re.findall(r"─ ([A-Z][A-Za-z_ ]+?) ─", plan))
            assert operators <= {"Projection", "Seq Scan", "Filter", "Table Scan"}, operators


def test_a_check_hosted_by_a_warehouse_connection_leaves_nothing_behind(tmp_path):
    """On a DuckDB warehouse the check runs on the warehouse's own connection (its publishing transaction then
    writes with INSERT ... SELECT). Afterwards that pooled connection holds none of the check's tables, macros or
    variables (the key's pads), and the settings the check changed are back."""
    import duckdb

    host = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    path = tmp_path / "kuhr_20190301_001.csv"
    _write(path, 1_000)
    settings = ("SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('preserve_insertion_order', 'disabled_optimizers', 'memory_limit') ORDER BY name")
    before = host.execute(settings).fetchall()
    with DeliveryCheck("a-secret-key", False, "2019-03-01", host) as check:
        assert check.read(path, nul_bytes=False) == 1_000
        assert host.execute("SELECT count(*) FROM checked").fetchone()[0] == 1_000
        assert host.execute("SELECT getvariable('kpr_ipad') IS NOT NULL").fetchone()[0]
    assert host.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0
    assert host.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name LIKE 'kpr_%'").fetchone()[0] == 0
    assert host.execute("SELECT getvariable('kpr_ipad') IS NULL AND getvariable('kpr_opad') IS NULL").fetchone()[0]
    assert host.execute(settings).fetchall() == before
