"""Search for person identifiers where none may be: every warehouse table, files, captured output.

A leak is an 11-digit string that is a valid identifier or test identity (``identifiers_in_texts``), outside
hexadecimal tokens: Dagster's storage is full of digests and UUIDs, and one digest in about 10,000 holds such a
string by chance.
Numbers are scanned as text too, so an identifier stored in a numeric column is found.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from kpr_pipeline.domain.identifiers import identifiers_in_texts

Finder = Callable[[list[str]], int]  # texts -> how many findings


def identifier_hits(texts: list[str]) -> int:
    return identifiers_in_texts(texts)[1]


def occurrences_of(secret: str) -> Finder:
    """A finder for one secret string (a key, a password), anywhere in the texts."""
    return lambda texts: sum(t.count(secret) for t in texts)


#: Tables copied from the public reference files: no person data, and the biggest tables by far.
REFERENCE_TABLES = ("ref_municipalities", "ref_municipality_changes", "ref_kuhr_takster", "ref_tjenestekoder",
                    "ref_population", "population_current", "kpr_schema_version")


def warehouse_leaks(warehouse, find: Finder = identifier_hits) -> dict[str, int]:
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
        hits = find(texts)
        if hits:
            found[table] = hits
    return found


def file_leaks(root: Path, find: Finder = identifier_hits) -> dict[str, int]:
    """File (relative to ``root``) -> identifiers found in its bytes (a gzip file's: decompressed), for every
    file under ``root``."""
    found = {}
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):  # a damaged file is scanned as it is
                pass
        hits = find([data.decode("latin-1")])
        if hits:
            found[path.relative_to(root).as_posix()] = hits
    return found


def database_leaks(url: str, schema: str = "public", find: Finder = identifier_hits) -> dict[str, int]:
    """Table -> identifiers found, for every table of a PostgreSQL database that is not a warehouse (a Dagster
    instance's run, event-log and schedule storage: run config, tags, events, metadata, logs)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    found = {}
    try:
        with engine.connect() as conn:
            columns = conn.execute(sa.text("SELECT table_name, column_name FROM information_schema.columns "
                                           "WHERE table_schema = :s ORDER BY table_name"), {"s": schema}).all()
            by_table: dict[str, list[str]] = {}
            for table, column in columns:
                by_table.setdefault(table, []).append(column)
            for table, names in by_table.items():
                texts = []
                for column in names:
                    rows = conn.execute(sa.text(f'SELECT DISTINCT CAST("{column}" AS TEXT) FROM "{table}"')).all()
                    texts += [r[0] for r in rows if r[0] is not None]
                hits = find(texts)
                if hits:
                    found[table] = hits
    finally:
        engine.dispose()
    return found
