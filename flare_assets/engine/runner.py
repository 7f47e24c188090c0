"""The job runner: inputs as temp views, SQL steps in order, then every output written."""

from __future__ import annotations

import time

from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from flare_assets.depots import DepotMap
from flare_assets.engine import assertions, iceberg, io
from flare_assets.engine.results import JobResult, OutputResult
from flare_assets.settings import Settings
from flare_assets.spec.model import Job, Output


class JobFailed(RuntimeError):
    """A named part of a job failed; the message says which and why."""


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run_job(
    spark: SparkSession,
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str = "job",
    only: set[str] | None = None,
) -> JobResult:
    """Runs the job; `only` names the outputs to write (default: all). Steps are lazy views, so a
    step that no written output needs costs nothing."""
    timings: dict[str, float] = {}
    sql: list[tuple[str, str]] = []
    start = time.perf_counter()
    for item in job.inputs:
        try:
            io.read_input(spark, item, depots, settings).createOrReplaceTempView(item.name)
        except PySparkException as exc:
            raise JobFailed(
                f"{name}: input {item.name!r} ({item.dataset}) could not be read: {_short(exc)}"
            ) from exc
    timings["read_inputs_s"] = time.perf_counter() - start
    for step in job.steps:
        for seq in step.sequence:
            t0 = time.perf_counter()
            try:
                spark.sql(seq.sql).createOrReplaceTempView(seq.name)
            except PySparkException as exc:
                raise JobFailed(f"{name}: step {seq.name!r} failed: {_short(exc)}") from exc
            sql.append((seq.name, seq.sql.strip()))
            timings[f"step_{seq.name}_s"] = time.perf_counter() - t0
    selected = [o for o in job.outputs if only is None or o.name in only]
    outputs = [_write(spark, output, job, depots, settings, name) for output in selected]
    timings["total_s"] = time.perf_counter() - start
    return JobResult(outputs=outputs, sql=sql, timings=timings)


def _write(
    spark: SparkSession, output: Output, job: Job, depots: DepotMap, settings: Settings, name: str
) -> OutputResult:
    t0 = time.perf_counter()
    df = spark.table(output.name)
    address = output.address
    to_iceberg = io.is_iceberg(address, depots)
    before = (
        io.current_snapshot(spark, address.table)[0]
        if to_iceberg and io.table_exists(spark, address.table)
        else None
    )
    try:
        column_tags = iceberg.resolve_column_tags(output, df.columns)
    except ValueError as exc:
        raise JobFailed(f"{name}: output {output.name!r}: {exc}") from exc
    try:
        if to_iceberg:
            evolution = iceberg.write(spark, df, output)
            iceberg.store_column_tags(spark, address.table, column_tags)
            target = address.table
        else:
            evolution = []
            target = io.write_files(df, output, depots, settings)
    except PySparkException as exc:
        raise JobFailed(
            f"{name}: output {output.name!r} ({output.dataset}) was not written: {_short(exc)}"
        ) from exc
    result = OutputResult(
        name=output.name,
        dataset=output.dataset,
        target=target,
        format="iceberg" if to_iceberg else output.format,
        save_mode=output.options.write_mode,
        rows_written=0,
        previous_snapshot_id=before,
        schema=[(f.name, f.dataType.simpleString()) for f in df.schema.fields],
        column_tags=column_tags,
    )
    if to_iceberg:
        result.snapshot_id, result.summary = io.current_snapshot(spark, target)
        result.rows_written = result.counter("added-records")
        result.partition_spec = ", ".join(iceberg.partition_terms(spark, target)) or "unpartitioned"
        result.partition_evolution = evolution
    else:
        result.rows_written = df.count()
    written = spark.read.option("snapshot-id", result.snapshot_id).table(target) if result.snapshot_id else df
    result.checks = [
        assertions.evaluate(spark, written, a, a.check_name(i))
        for i, a in enumerate(job.assertions_for(output))
    ]
    if job.show_preview_lines:
        rows = (spark.table(target) if to_iceberg else df).limit(job.show_preview_lines).collect()
        result.preview = [r.asDict() for r in rows]
    result.seconds = time.perf_counter() - t0
    return result
