"""Alembic, with its DuckDB dialect registered: Alembic finds a dialect's implementation by the name in
``__dialect__`` once the class exists. ``migrate`` imports this module only when it runs Alembic."""

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext

__all__ = ["Config", "MigrationContext", "command"]


class AlembicDuckDBImpl(DefaultImpl):
    """Lets Alembic drive DuckDB through duckdb-engine."""

    __dialect__ = "duckdb"
    transactional_ddl = True
