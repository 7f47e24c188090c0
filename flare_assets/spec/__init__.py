"""Manifest layer: YAML files -> validated models. Knows nothing of Spark or Dagster."""
