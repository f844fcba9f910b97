"""kpr-pipeline: the data pipeline of the Municipal Patient and User Registry (KPR)."""

__version__ = "0.1.0"
