"""Alembic's DuckDB dialect: importing this module registers it (Alembic finds an implementation by the
dialect name in ``__dialect__``)."""

from alembic.ddl.impl import DefaultImpl


class AlembicDuckDBImpl(DefaultImpl):
    """Lets Alembic drive DuckDB through duckdb-engine."""

    __dialect__ = "duckdb"
    transactional_ddl = True
