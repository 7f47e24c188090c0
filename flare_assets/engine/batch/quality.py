"""Data-quality jobs: a job with inputs and assertions and no outputs checks datasets as they are.

Each input is read as a job reads it (its `query` applied) and registered under its own name, so
an assertion's SQL may read it by name or as `source`; its assertions then run as an output's do,
the column ones sharing one scan of the input."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from flare_assets.depots import DepotMap
from flare_assets.engine.batch import assertions
from flare_assets.engine.batch.assertions import AssertionResult
from flare_assets.engine.errors import SPARK_ERRORS, JobFailed, short
from flare_assets.engine.tables import io
from flare_assets.settings import Settings
from flare_assets.spec.model import Assertion, Job


@dataclass
class InputChecks:
    """The checks of one input: what was read and how each assertion came out."""

    input: str
    dataset: str
    checks: list[AssertionResult] = field(default_factory=list)
    seconds: float = 0.0


def named_assertions(job: Job, input_name: str) -> list[tuple[str, Assertion]]:
    return [(a.check_name(i), a) for i, a in enumerate(job.assertions_for_input(input_name))]


def run_checks(
    spark: SparkSession,
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str = "job",
    only: set[tuple[str, str]] | None = None,
) -> list[InputChecks]:
    """Every assertion of a data-quality job, or those named in `only` as (input, check name). An
    input that cannot be read fails the run; a failing or erroring assertion is a result."""
    if job.log_level:
        spark.sparkContext.setLogLevel(job.log_level)
    results: list[InputChecks] = []
    frames = {}
    try:
        for item in job.inputs:
            try:
                frames[item.name] = io.read_input(spark, item, depots, settings)
            except (*SPARK_ERRORS, ValueError) as exc:
                raise JobFailed(
                    f"{name}: input {item.name!r} ({item.dataset}) could not be read: {short(exc)}"
                ) from exc
        for item in job.inputs:
            named = [
                (check, a)
                for check, a in named_assertions(job, item.name)
                if only is None or (item.name, check) in only
            ]
            if not named:
                continue
            t0 = time.perf_counter()
            for view, frame in frames.items():
                frame.createOrReplaceTempView(view)
            checks = assertions.evaluate_all(spark, frames[item.name], named)
            results.append(InputChecks(item.name, item.dataset, checks, time.perf_counter() - t0))
    finally:
        for view in frames:
            spark.catalog.dropTempView(view)
        if job.log_level:
            spark.sparkContext.setLogLevel("WARN")
    return results
