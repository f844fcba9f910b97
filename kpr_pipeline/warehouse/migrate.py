"""Versioned schema migrations (Alembic), applied programmatically on first use.

Operators can also run them by hand: ``kpr-pipeline migrate``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Not Alembic's default ``alembic_version``: Dagster's PostgreSQL storage keeps its own there, and
#: the two may share a database.
VERSION_TABLE = "kpr_schema_version"


class AlembicDuckDBImpl(DefaultImpl):
    """Lets Alembic drive DuckDB through duckdb-engine (registered by its ``__dialect__``)."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
