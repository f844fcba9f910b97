"""The derived statistics of spec/statistics.md, computed in SQL inside the warehouse (one code path for
DuckDB and PostgreSQL); the Dagster layer in ``defs/statistics`` only chooses partitions."""
