"""Versioned schema migrations (Alembic), applied programmatically on first use.

Operators can also run them by hand: ``kpr-pipeline migrate``. A warehouse already at the newest revision is
recognised by one query (``is_current``), without loading Alembic and its scripts, which costs every process
that touches the warehouse (a Dagster step, a delivery load) a quarter of a second.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Not Alembic's default ``alembic_version``: Dagster's PostgreSQL storage keeps its own there, and
#: the two may share a database.
VERSION_TABLE = "kpr_schema_version"


def head_revision() -> str:
    """The newest revision, from the migration files' names: ``NNNN_<what>.py`` holds revision ``NNNN``
    (``test_warehouse`` holds every file to that)."""
    return max(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def is_current(engine: Engine) -> bool:
    """Whether the warehouse's schema is at the newest revision."""
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except sa.exc.ProgrammingError:  # a new warehouse: no version table yet
        return False
    return version == head_revision()


def _alembic():
    from kpr_pipeline.warehouse import alembic_duckdb

    return alembic_duckdb


def alembic_config():
    config = _alembic().Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _migrate(engine: Engine, command: str, revision: str) -> None:
    """Run Alembic's ``upgrade`` or ``downgrade`` to ``revision`` in one transaction."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(_alembic().command, command)(config, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    _migrate(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Back to ``revision`` (by hand, or a test of a migration)."""
    _migrate(engine, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _alembic().MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
