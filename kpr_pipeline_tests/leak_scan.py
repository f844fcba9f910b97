"""Search for person identifiers where none may be: every warehouse table, files, captured output.

A leak is an 11-digit string that is a valid identifier or test identity (``identifiers_in_texts``).
Numbers are scanned as text too, so an identifier stored in a numeric column is found.
"""

from __future__ import annotations

from pathlib import Path

from kpr_pipeline.domain.identifiers import identifiers_in_texts


#: Tables copied from the public reference files: no person data, and the biggest tables by far.
REFERENCE_TABLES = ("ref_municipalities", "ref_municipality_changes", "ref_kuhr_takster", "ref_tjenestekoder",
                    "ref_population", "population_current", "kpr_schema_version")


def warehouse_leaks(warehouse) -> dict[str, int]:
    """Table -> number of distinct identifiers found in its columns (only tables with a finding); every
    distinct value of every column of every table that can hold person data is read."""
    schema = "main" if warehouse.is_duckdb else "public"
    columns = warehouse.query("SELECT table_name, column_name FROM information_schema.columns "
                              "WHERE table_schema = :s ORDER BY table_name, ordinal_position", s=schema)
    found = {}
    for table, part in columns.groupby("table_name"):
        if table in REFERENCE_TABLES:
            continue
        texts = []
        for column in part["column_name"]:
            values = warehouse.frame(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) AS v FROM "{table}"')["v"]
            texts += [str(v) for v in values.dropna()]
        _, hits = identifiers_in_texts(texts)
        if hits:
            found[table] = hits
    return found


def file_leaks(root: Path) -> dict[str, int]:
    """File (relative to ``root``) -> identifiers found in its bytes, for every file under ``root``."""
    found = {}
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        _, hits = identifiers_in_texts([path.read_bytes().decode("latin-1")])
        if hits:
            found[path.relative_to(root).as_posix()] = hits
    return found
