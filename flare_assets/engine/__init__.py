"""Runs one Flare job on a SparkSession. No Dagster here: results are plain objects."""

from flare_assets.engine.context import RunContext
from flare_assets.engine.errors import JobFailed
from flare_assets.engine.results import JobResult, OutputResult
from flare_assets.engine.runner import run_job

__all__ = ["JobFailed", "JobResult", "OutputResult", "RunContext", "run_job"]
