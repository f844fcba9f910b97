"""The KPR-KUHR check in DuckDB keeps the file's order: a row's number is its rowid in ``checked``."""

import gzip
import re

from kpr_pipeline.domain.kuhr import format as fmt
from kpr_pipeline.domain.kuhr import rules
from kpr_pipeline.ingest.kuhr_check import DeliveryCheck

ROWS = 400_000  # several of DuckDB's row groups, read by more than one thread


def _write(path, rows: int) -> list[str]:
    ids = [f"r{i:07d}-{(i * 7919) % 100_003:06d}" for i in range(rows)]
    other = ";".join(["x"] * (len(fmt.REQUIRED_COLUMNS) - 1))
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        out.write(";".join(fmt.REQUIRED_COLUMNS) + "\n")
        out.writelines(f"{i};{other}\n" for i in ids)
    return ids


def test_checked_rows_keep_the_file_order(tmp_path):
    path = tmp_path / "kuhr_20190301_001.csv.gz"
    ids = _write(path, ROWS)
    with DeliveryCheck("k", False, "2019-03-01") as check:
        assert check.read(path, nul_bytes=True) == ROWS
        stored = [r[0] for r in check.con.execute("SELECT regning_id FROM checked ORDER BY rowid").fetchall()]
    assert stored == ids


def test_the_check_is_planned_without_joins_or_aggregates():
    """Order is kept only by scans, filters and projections: a join (DuckDB turns a long IN list into one)
    or an aggregate could reorder rows and give them the wrong numbers."""
    with DeliveryCheck("k", True, "2019-03-01") as check:
        columns = [*fmt.REQUIRED_COLUMNS, "fritak_egenandel", "extra"]
        check.con.execute(f"CREATE TABLE src AS SELECT {', '.join(f'NULL::VARCHAR AS {rules.q(c)}' for c in columns)}")
        for nul_bytes in (False, True):
            plan = check.con.execute("EXPLAIN " + rules.checked_select(columns, "src", True, nul_bytes, "2019-03-01"))
            operators = set(re.findall(r"─ ([A-Z][A-Za-z_ ]+?) ─", plan.fetchall()[0][1]))
            assert operators <= {"Projection", "Seq Scan", "Filter", "Table Scan"}, operators
