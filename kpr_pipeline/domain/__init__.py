"""The registry's domain logic. Nothing below this package imports Dagster."""
