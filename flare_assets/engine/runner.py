"""The job runner: inputs as temp views, SQL steps in order, then every output written.

A job with several outputs computes them all before writing any, so a failing computation leaves
every output at its previous snapshot; each write is then one atomic Iceberg commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from flare_assets.depots import DepotMap
from flare_assets.engine import (
    assertions,
    bad_records,
    housekeeping,
    iceberg,
    idempotence,
    incremental,
    io,
    state,
)
from flare_assets.engine.errors import SPARK_ERRORS, JobFailed, short
from flare_assets.engine.functions import apply_functions
from flare_assets.engine.housekeeping import HousekeepingContext
from flare_assets.engine.layout import with_run_id
from flare_assets.engine.params import escape, substitute
from flare_assets.engine.partitions import PartitionSlice
from flare_assets.engine.results import JobResult, OutputResult, PartitionWritten
from flare_assets.engine.state import StateRequest
from flare_assets.settings import Settings
from flare_assets.spec.model import Assertion, Job, Output, placeholders


def run_job(
    spark: SparkSession,
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str = "job",
    only: set[str] | None = None,
    run_id: str | None = None,
    partition: PartitionSlice | None = None,
    request: StateRequest | None = None,
    inputs_read: dict[str, DataFrame] | None = None,
    snapshot_properties: dict[str, str] | None = None,
) -> JobResult:
    """Runs the job; `only` names the outputs to write (default: all). Steps are lazy views, so a
    step that no written output needs costs nothing. A `partition` run replaces exactly its slice of
    each output; incremental inputs read what is new since the last committed run, and a run that
    finds nothing new writes nothing. The run's number (`result.run_number`) fills a run_id
    partition column the result lacks; outputs with housekeeping are tidied once every write and
    the run's state are committed. `inputs_read` are inputs already read (a stream's micro-batch);
    `snapshot_properties` go into every Iceberg commit's summary. When they name a Dagster run
    (engine/idempotence.py), an output whose branch already holds a commit of that run (an earlier
    attempt of a re-executed run) is reported from that snapshot instead of written again; when all
    are, nothing is read or computed."""
    problems = state.request_problems(job, request or StateRequest(), only)
    if problems:
        raise JobFailed(f"{name}: replay config: {'; '.join(problems)}; nothing was run")
    result = JobResult(outputs=[], sql=[], timings={})
    cached: list[str] = []
    held: list[DataFrame] = []
    if job.log_level:
        spark.sparkContext.setLogLevel(job.log_level)
    start = time.perf_counter()
    try:
        previous = state.committed(spark, job, depots, settings, name)
        result.run_number = previous.run_id + 1
        result.partition = partition.describe() if partition else None
        landed = _landed(spark, job, depots, only, snapshot_properties)
        if landed and len(landed) == len([o for o in job.outputs if only is None or o.name in only]):
            result.outputs = [
                _replay(spark, o, landed[o.name], job, name, run_id) for o in job.outputs if o.name in landed
            ]
            result.run_number = int(next(iter(landed.values()))[1].get(state.RUN_ID, result.run_number))
            return result
        rejected: list[bad_records.Rejected] = []
        progress = _read_inputs(
            spark,
            job,
            depots,
            settings,
            name,
            previous,
            result.run_number,
            request,
            inputs_read or {},
            rejected,
        )
        held += [r.frame for r in rejected]
        result.bad_records = _settle(
            spark, rejected, job, depots, name, result.run_number, snapshot_properties
        )
        result.incremental = progress
        result.timings["read_inputs_s"] = time.perf_counter() - start
        if progress and not _anything_new(spark, progress):
            result.skipped = (
                f"no new data since run {previous.run_id}: "
                + "; ".join(f"{p.input}: {p.detail}" for p in progress)
                + ". Nothing was written."
            )
            return result
        params = partition.placeholders() if partition else {}
        for p in progress:
            params.update({k: escape(v) for k, v in p.keys.items()})
        _run_steps(spark, job, name, result, cached, params)
        selected = [o for o in job.outputs if only is None or o.name in only]
        if (request and request.reset) or any(p.refresh for p in progress):
            selected = [_replacing(o) for o in selected]
        frames = {o.name: with_run_id(spark.table(o.name), o, result.run_number) for o in selected}
        measured: dict[str, dict[str, dict[str, Any]]] = {}
        if len(selected) > 1:
            for output in selected:
                early = (
                    _named_assertions(job, output) if partition is None and _whole_overwrite(output) else []
                )
                kept, measured[output.name] = _compute(frames[output.name], output, name, early)
                held.append(kept)
                frames[output.name] = _coalesced(kept)
        feed = name.split("/")[0]
        contexts = {o.name: housekeeping.context(feed, o, result.run_number) for o in selected}
        tags = {o.name: _check(frames[o.name], o, name, contexts[o.name]) for o in selected}
        props = {state.RUN_ID: str(result.run_number), **(snapshot_properties or {})}
        for p in progress:
            props.update(p.properties)
        slices = {o.name: _slice(frames[o.name], o, partition, name) for o in selected}
        result.outputs = [
            _replay(spark, o, landed[o.name], job, name, run_id)
            if o.name in landed
            else _write(
                spark,
                frames[o.name],
                o,
                tags[o.name],
                job,
                depots,
                settings,
                name,
                run_id,
                props,
                slices[o.name],
                measured.get(o.name),
                partition,
            )
            for o in selected
        ]
        if not any(depots.is_iceberg(o.address) for o in selected):
            state.save_file_state(settings, name, {**previous.values, **props})
        for p in progress:
            if p.archive is not None and p.folder is not None and p.files:
                result.archived += incremental.archive_files(p.folder, p.archive, p.files)
        for output, written in zip(selected, result.outputs, strict=True):
            if output.housekeeping and written.published is not False:
                written.housekeeping = _housekeep(
                    spark, output, depots, settings, name, contexts[output.name]
                )
    finally:
        for view in cached:
            spark.catalog.uncacheTable(view)
        for frame in held:
            frame.unpersist()
        if job.log_level:
            spark.sparkContext.setLogLevel("WARN")
    result.cached = cached
    result.timings["total_s"] = time.perf_counter() - start
    return result


def _read_inputs(
    spark: SparkSession,
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str,
    previous: state.RunState,
    run_number: int,
    request: StateRequest | None,
    inputs_read: dict[str, DataFrame],
    rejected: list[bad_records.Rejected],
) -> list[incremental.Progress]:
    """Reads every input as a temp view; JSON and CSV file inputs leave their malformed records in
    `rejected` (engine/bad_records.py)."""
    request = request or StateRequest()
    progress: list[incremental.Progress] = []
    for item in job.inputs:
        try:
            frame: DataFrame | None
            if item.name in inputs_read:
                frame, info = io.apply_query(spark, item, inputs_read[item.name]), None
            elif item.incremental_read is not None and depots.is_iceberg(item.address):
                frame, info = incremental.iceberg_appends(spark, item, previous, request.reset)
            elif item.incremental_read is not None:
                frame, info = incremental.new_files(
                    spark, item, depots, settings, previous, run_number, name, request.reset
                )
            elif bad_records.applies(item, depots):
                frame, bad = bad_records.read(spark, item, depots, settings)
                rejected.append(bad)
                info = None
            else:
                written = {o.address.table for o in job.outputs}
                frame = io.read_input(spark, item, depots, settings, pin=item.address.table in written)
                info = None
            if item.incremental is not None and frame is not None:
                frame, info = incremental.flare_block(
                    spark, item, frame, previous, request.for_input(item.name), request.reset
                )
            if info is not None:
                progress.append(info)
            if frame is not None:
                frame = io.apply_query(spark, item, frame) if item.incremental_read is not None else frame
                frame.createOrReplaceTempView(item.name)
        except (*SPARK_ERRORS, ValueError) as exc:
            raise JobFailed(
                f"{name}: input {item.name!r} ({item.dataset}) could not be read: {short(exc)}"
            ) from exc
    return progress


def _replacing(output: Output) -> Output:
    """An append output of a run that read its inputs from scratch (a reset, or a full refresh after
    an upstream rewrite): the run's rows replace the table in one commit, as a first run's would."""
    if output.options.write_mode != "append":
        return output
    replaced = output.model_copy(deep=True)
    replaced.options.save_mode = "overwrite"
    return replaced


def _settle(
    spark: SparkSession,
    rejected: list[bad_records.Rejected],
    job: Job,
    depots: DepotMap,
    name: str,
    run_number: int,
    snapshot_properties: dict[str, str] | None,
) -> list[bad_records.BadRecords]:
    try:
        return bad_records.settle(spark, rejected, job, depots, name, run_number, snapshot_properties)
    except (*SPARK_ERRORS, ValueError) as exc:
        raise JobFailed(f"{name}: malformed input records could not be quarantined: {short(exc)}") from exc


def _anything_new(spark: SparkSession, progress: list[incremental.Progress]) -> bool:
    for p in progress:
        if p.new_data is None:
            p.new_data = not spark.table(p.input).isEmpty()
    return any(p.new_data for p in progress)


def _slice(df: DataFrame, output: Output, partition: PartitionSlice | None, name: str) -> Column | None:
    """The rows this partition run replaces; rows of the result outside it are an error, not a write."""
    if partition is None:
        return None
    types = {f.name.lower(): f.dataType for f in df.schema.fields}
    try:
        condition = partition.condition(types)
    except ValueError as exc:
        raise JobFailed(f"{name}: output {output.name!r}: {exc}; nothing was written") from exc
    stray = df.filter(~F.coalesce(condition, F.lit(False))).limit(3).collect()
    if stray:
        raise JobFailed(
            f"{name}: output {output.name!r} has rows outside partition {partition.describe()} (for example "
            f"{stray[0].asDict()}); a partition run writes only its own slice, nothing was written"
        )
    return condition


def _run_steps(
    spark: SparkSession, job: Job, name: str, result: JobResult, cached: list[str], params: dict[str, str]
) -> None:
    for step in job.steps:
        for seq in step.sequence:
            t0 = time.perf_counter()
            try:
                sql = substitute(seq.sql, params, f"step {seq.name!r}") if placeholders(seq.sql) else seq.sql
                frame = spark.sql(sql)
                if seq.functions:
                    frame = apply_functions(frame, seq.functions)
                    result.functions[seq.name] = [fn.name for fn in seq.functions]
                frame.createOrReplaceTempView(seq.name)
                if job.explain:
                    result.plans[seq.name] = frame._jdf.queryExecution().toString()
                for command in seq.commands:
                    view = command.sequence_name or seq.name
                    if command.name == "unpersist":
                        spark.catalog.uncacheTable(view)
                    else:
                        spark.catalog.cacheTable(view, getattr(StorageLevel, command.level))
                        cached.append(view)
            except (*SPARK_ERRORS, ValueError) as exc:
                raise JobFailed(f"{name}: step {seq.name!r} failed: {short(exc)}") from exc
            doc = "".join(f"-- {line}\n" for line in (seq.doc or "").strip().splitlines())
            result.sql.append((seq.name, doc + sql.strip()))
            result.timings[f"step_{seq.name}_s"] = time.perf_counter() - t0


def _compute(
    frame: DataFrame, output: Output, name: str, named: list[tuple[str, Assertion]]
) -> tuple[DataFrame, dict[str, dict[str, Any]]]:
    """Computes an output's rows ahead of every write of the job. When the write will make the table
    exactly these rows, the scan that fills the cache also measures the column assertions (`named`)."""
    kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        measured = assertions.shared_metrics(kept.sparkSession, kept, named, minimum=1) if named else {}
        if not measured:
            kept.count()
    except SPARK_ERRORS as exc:
        kept.unpersist()
        raise JobFailed(
            f"{name}: output {output.name!r} could not be computed, nothing was written: {short(exc)}"
        ) from exc
    return kept, measured


def _coalesced(kept: DataFrame) -> DataFrame:
    """A held result in partitions of the size adaptive execution aims at. Caching keeps its
    spark.sql.shuffle.partitions partitions, most of them tiny after an aggregate, and a write to an
    unpartitioned table would make a file of each."""
    spark = kept.sparkSession
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    size = int(str(kept._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))
    target = jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes(
        spark.conf.get("spark.sql.adaptive.advisoryPartitionSizeInBytes", "64m")
    )
    wanted = max(1, -(-size // max(int(target), 1)))
    return kept.coalesce(wanted) if wanted < kept.rdd.getNumPartitions() else kept


def _check(frame: DataFrame, output: Output, name: str, ctx: HousekeepingContext) -> dict[str, list[str]]:
    """What can be checked against the result's schema before any write; returns the column tags."""
    try:
        iceberg.check_partition_columns(output, frame.columns)
        housekeeping.check(frame.sparkSession, output, ctx)
        return iceberg.resolve_column_tags(output, frame.columns)
    except ValueError as exc:
        raise JobFailed(
            f"{name}: output {output.name!r} ({output.dataset}): {exc}; nothing was written"
        ) from exc


def _write(
    spark: SparkSession,
    df: DataFrame,
    output: Output,
    column_tags: dict[str, list[str]],
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str,
    run_id: str | None,
    properties: dict[str, str],
    slice_condition: Column | None,
    measured: dict[str, dict[str, Any]] | None,
    partition: PartitionSlice | None = None,
) -> OutputResult:
    """`measured` (held results only): the output's column assertion metrics, taken from its rows
    before the write."""
    t0 = time.perf_counter()
    address = output.address
    to_iceberg = depots.is_iceberg(address)
    exists = to_iceberg and spark.catalog.tableExists(address.table)
    branch = output.options.branch or "main"
    wap = output.options.write_audit_publish if to_iceberg else None
    audit = f"{wap.branch_prefix}_{_run_tag(run_id)}" if wap else None
    before = iceberg.head(spark, address.table, branch)[0] if exists else None
    evolution: list[str] = []
    try:
        if to_iceberg:
            if audit:
                if not exists:
                    iceberg.create_table(spark, df, output)
                iceberg.create_audit_branch(spark, address.table, audit, branch)
            evolution = iceberg.write(
                spark,
                df,
                output,
                branch=audit,
                properties=properties,
                slice_condition=slice_condition,
                private=audit is not None,
            )
            target = address.table
        else:
            target = io.write_files(df, output, depots, settings)
    except (*SPARK_ERRORS, ValueError) as exc:
        raise JobFailed(
            f"{name}: output {output.name!r} ({output.dataset}) was not written: {short(exc)}"
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
        partition_evolution=evolution,
        audit_branch=audit,
    )
    if to_iceberg:
        result.snapshot_id, result.summary = iceberg.written(spark, target, audit or branch)
        result.branch = audit or branch
        result.rows_written = result.counter("added-records")
        result.partition_spec = ", ".join(iceberg.partition_terms(spark, target)) or "unpartitioned"
        _after_commit(result, name, lambda: iceberg.store_column_tags(spark, target, column_tags))
    else:
        result.rows_written = df.count()
    written = spark.read.option("snapshot-id", result.snapshot_id).table(target) if result.snapshot_id else df
    replaced = measured is not None and _replaced_by(df, written, output, slice_condition)
    if replaced:
        written = df  # the same rows, already in memory: checks and preview need no second scan
    named = _named_assertions(job, output)
    result.checks = assertions.evaluate_all(
        spark, written, named, measured if replaced and measured else None
    )
    if audit and wap:
        _publish(spark, result, audit, branch, keep=wap.keep_branch, name=name)
    if to_iceberg and run_id and result.snapshot_id and result.published is not False:
        _tag_run(spark, result, run_id, name)
    if partition is not None and slice_condition is not None:
        result.partitions = _partitions_written(written, partition, job.show_preview_lines)
        result.preview = [r for p in result.partitions for r in p.preview][: job.show_preview_lines]
    elif job.show_preview_lines:
        result.preview = [r.asDict() for r in written.limit(job.show_preview_lines).collect()]
    result.seconds = time.perf_counter() - t0
    return result


RUN_TAG_RETAIN_DAYS = 30


def _partitions_written(written: DataFrame, partition: PartitionSlice, lines: int) -> list[PartitionWritten]:
    """Each partition's rows and first `lines` rows in the table just written: one aggregate, and one
    ranked query that Spark limits per partition before its shuffle."""
    types = {f.name.lower(): f.dataType for f in written.schema.fields}
    parts = partition.parts(types)
    index: Any = None
    for i, (_, condition) in enumerate(parts):
        index = F.when(condition, F.lit(i)) if index is None else index.when(condition, F.lit(i))
    part, n = "__flare_part", "__flare_n"
    tagged = written.withColumn(part, index).filter(F.col(part).isNotNull())
    counts = {row[0]: row[1] for row in tagged.groupBy(part).count().collect()}
    previews: dict[int, list[dict[str, Any]]] = {}
    if lines and counts:
        ranked = tagged.withColumn(n, F.row_number().over(Window.partitionBy(part).orderBy(F.lit(1))))
        for row in ranked.filter(F.col(n) <= lines).collect():
            values = row.asDict()
            values.pop(n)
            previews.setdefault(values.pop(part), []).append(values)
    return [
        PartitionWritten(keys, counts.get(i, 0), previews.get(i, [])) for i, (keys, _) in enumerate(parts)
    ]


def _tag_run(spark: SparkSession, result: OutputResult, run_id: str, name: str) -> None:
    assert result.snapshot_id is not None
    tag = f"run_{_run_tag(run_id)}"
    _after_commit(
        result,
        name,
        lambda: iceberg.tag_snapshot(spark, result.target, result.snapshot_id, tag, RUN_TAG_RETAIN_DAYS),
    )
    result.snapshot_tag = tag


def _after_commit(result: OutputResult, name: str, commit: Callable[[], None]) -> None:
    """A metadata commit after the rows landed (column tags, the run's tag). It retries conflicts
    itself; a failure still ends the run, saying the rows are in, so a re-execution of the run
    finds them (engine/idempotence.py) and finishes this step without writing them twice."""
    try:
        commit()
    except Exception as exc:  # whatever broke, the message must say the rows are committed
        raise JobFailed(
            f"{name}: output {result.name!r} ({result.dataset}): rows committed as snapshot "
            f"{result.snapshot_id}; tagging failed: {short(exc)}. Re-execute the run: it finds its "
            "committed rows and does not write them again"
        ) from exc


def _landed(
    spark: SparkSession,
    job: Job,
    depots: DepotMap,
    only: set[str] | None,
    snapshot_properties: dict[str, str] | None,
) -> dict[str, tuple[int, dict[str, str]]]:
    """Outputs an earlier attempt of this Dagster run committed: name -> (snapshot id, summary)."""
    ident = idempotence.identity(snapshot_properties)
    if not ident:
        return {}
    found = {}
    for output in job.outputs:
        if (only is None or output.name in only) and depots.is_iceberg(output.address):
            hit = idempotence.landed(spark, output.address.table, output.options.branch or "main", ident)
            if hit is not None:
                found[output.name] = hit
    return found


def _replay(
    spark: SparkSession,
    output: Output,
    landed: tuple[int, dict[str, str]],
    job: Job,
    name: str,
    run_id: str | None,
) -> OutputResult:
    """The result of a write an earlier attempt of this run committed: its snapshot, checks on it, and
    the metadata commits that attempt may not have finished (column tags, the run's tag)."""
    t0 = time.perf_counter()
    snapshot_id, summary = landed
    table = output.address.table
    written = spark.read.option("snapshot-id", snapshot_id).table(table)
    tags = iceberg.resolve_column_tags(output, written.columns)
    result = OutputResult(
        name=output.name,
        dataset=output.dataset,
        target=table,
        format="iceberg",
        save_mode=output.options.write_mode,
        rows_written=0,
        snapshot_id=snapshot_id,
        branch=output.options.branch or "main",
        summary=summary,
        schema=[(f.name, f.dataType.simpleString()) for f in written.schema.fields],
        column_tags=tags,
        partition_spec=", ".join(iceberg.partition_terms(spark, table)) or "unpartitioned",
        committed_earlier=True,
    )
    _after_commit(result, name, lambda: iceberg.store_column_tags(spark, table, tags))
    result.checks = assertions.evaluate_all(spark, written, _named_assertions(job, output), None)
    if run_id:
        _tag_run(spark, result, run_id, name)
    if job.show_preview_lines:
        result.preview = [r.asDict() for r in written.limit(job.show_preview_lines).collect()]
    result.seconds = time.perf_counter() - t0
    return result


def _named_assertions(job: Job, output: Output) -> list[tuple[str, Assertion]]:
    return [(a.check_name(i), a) for i, a in enumerate(job.assertions_for(output))]


def _whole_overwrite(output: Output) -> bool:
    return output.options.write_mode == "overwrite" and output.options.commit_by is None


def _replaced_by(df: DataFrame, written: DataFrame, output: Output, slice_condition: Column | None) -> bool:
    """Whether the commit made the table exactly `df` (a held result)."""
    return (
        written is not df
        and _whole_overwrite(output)
        and slice_condition is None
        and [c.lower() for c in written.columns] == [c.lower() for c in df.columns]
    )


def _housekeep(
    spark: SparkSession,
    output: Output,
    depots: DepotMap,
    settings: Settings,
    name: str,
    ctx: HousekeepingContext,
) -> housekeeping.HousekeepingResult:
    """After the run is committed: a failure here leaves the written data and the run's state as
    they are; the next run, or the housekeeping job, finishes the work."""
    try:
        return housekeeping.run(spark, output, depots, settings, ctx)
    except (*SPARK_ERRORS, ValueError, OSError) as exc:
        raise JobFailed(
            f"{name}: output {output.name!r} ({output.dataset}) was written, but its housekeeping failed: "
            f"{short(exc)}; the next run or the housekeeping job finishes it"
        ) from exc


def _run_tag(run_id: str | None) -> str:
    """A short, identifier-safe name for the run (Dagster's run id prefix, as its UI shows it)."""
    return (run_id or time.strftime("%Y%m%d%H%M%S")).split("-")[0]


def _publish(
    spark: SparkSession, result: OutputResult, audit: str, branch: str, keep: bool, name: str
) -> None:
    """Fast-forwards the target branch when every blocking check passed; otherwise leaves it alone."""
    failed = [c.name for c in result.checks if c.blocking and not c.passed]
    if failed:
        result.published = False
        return
    try:
        iceberg.publish(spark, result.target, audit, branch)
    except ValueError as exc:
        raise JobFailed(f"{name}: output {result.name!r}: {exc}") from exc
    result.published = True
    result.branch = branch
    if not keep:
        iceberg.drop_branch(spark, result.target, audit)
