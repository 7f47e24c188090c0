"""Runs one Flare job on a SparkSession. No Dagster here: results are plain objects."""

from flare_assets.engine.batch.context import RunContext
from flare_assets.engine.batch.results import JobResult, OutputResult
from flare_assets.engine.batch.runner import run_job
from flare_assets.engine.errors import JobFailed

__all__ = ["JobFailed", "JobResult", "OutputResult", "RunContext", "run_job"]
