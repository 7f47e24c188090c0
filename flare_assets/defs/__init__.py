"""Dagster translation: manifests -> assets, schedules and resources."""
