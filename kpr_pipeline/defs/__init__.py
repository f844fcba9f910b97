"""The Dagster layer, kept thin: one folder per dataset with its assets, checks and automation."""
