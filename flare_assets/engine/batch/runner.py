"""The job runner: inputs as temp views, SQL steps in order, then every output written.

A job with several outputs computes them all before writing any, so a failing computation leaves
every output at its previous snapshot; each write is then one atomic Iceberg commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from flare_assets.engine import housekeeping
from flare_assets.engine.batch import assertions, bad_records, idempotence, incremental, state
from flare_assets.engine.batch.context import RunContext
from flare_assets.engine.batch.params import escape, substitute
from flare_assets.engine.batch.partitions import PartitionSlice
from flare_assets.engine.batch.results import JobResult, OutputResult, PartitionWritten
from flare_assets.engine.errors import SPARK_ERRORS, JobFailed, short
from flare_assets.engine.functions import apply_functions
from flare_assets.engine.housekeeping import HousekeepingContext
from flare_assets.engine.tables import iceberg, io, refs
from flare_assets.engine.tables.layout import with_run_id
from flare_assets.spec.model import Assertion, Input, Job, Output, Sequence, placeholders


@dataclass
class _Run:
    """One run in progress: its context, the result it builds, and what it holds until the end."""

    ctx: RunContext
    result: JobResult
    previous: state.RunState | None = None
    landed: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    progress: list[incremental.Progress] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    held: list[DataFrame] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return self.result.run_number


@dataclass
class _Pending:
    """An output computed and checked, waiting for its write."""

    output: Output
    frame: DataFrame
    tags: dict[str, list[str]]
    slice_condition: Column | None
    measured: dict[str, dict[str, Any]] | None
    housekeeping: HousekeepingContext


def run_job(ctx: RunContext) -> JobResult:
    """Runs the job; `ctx.only` names the outputs to write (default: all). Steps are lazy views, so a
    step that no written output needs costs nothing. A `partition` run replaces exactly its slice of
    each output; incremental inputs read what is new since the last committed run, and a run that
    finds nothing new writes nothing. The run's number (`result.run_number`) fills a run_id
    partition column the result lacks; outputs with housekeeping are tidied once every write and
    the run's state are committed. `inputs_read` are inputs already read (a stream's micro-batch);
    `snapshot_properties` go into every Iceberg commit's summary. When they name a Dagster run
    (engine/batch/idempotence.py), an output whose branch already holds a commit of that run (an earlier
    attempt of a re-executed run) is reported from that snapshot instead of written again; when all
    are, nothing is read or computed."""
    problems = state.request_problems(ctx.job, ctx.request, ctx.only)
    if problems:
        raise JobFailed(f"{ctx.name}: replay config: {'; '.join(problems)}; nothing was run")
    run = _Run(ctx, JobResult(outputs=[], sql=[], timings={}))
    start = time.perf_counter()
    with _held(run):
        if _begin(run) or _read(run, start):
            return run.result
        _compute(run)
        _write_all(run)
        _finish(run)
    run.result.cached = run.cached
    run.result.timings["total_s"] = time.perf_counter() - start
    return run.result


@contextmanager
def _held(run: _Run) -> Iterator[None]:
    """The job's log level while it runs; cached views and held results released at the end."""
    spark, level = run.ctx.spark, run.ctx.job.log_level
    if level:
        spark.sparkContext.setLogLevel(level)
    try:
        yield
    finally:
        for view in run.cached:
            spark.catalog.uncacheTable(view)
        for frame in run.held:
            frame.unpersist()
        if level:
            spark.sparkContext.setLogLevel("WARN")


def _begin(run: _Run) -> bool:
    """The run's number, after the last committed one. True when an earlier attempt of this Dagster
    run committed every output: the result is then reported from those commits."""
    ctx, result = run.ctx, run.result
    run.previous = state.committed(ctx)
    result.run_number = run.previous.run_id + 1
    result.partition = ctx.partition.describe() if ctx.partition else None
    run.landed = _landed(ctx)
    if not run.landed or len(run.landed) != len(ctx.selected()):
        return False
    result.outputs = [_replay(ctx, o, run.landed[o.name]) for o in ctx.job.outputs if o.name in run.landed]
    result.run_number = int(next(iter(run.landed.values()))[1].get(state.RUN_ID, result.run_number))
    return True


def _read(run: _Run, start: float) -> bool:
    """Every input as a view, malformed records quarantined. True when incremental inputs hold
    nothing new: the run then writes nothing."""
    ctx, result = run.ctx, run.result
    rejected: list[bad_records.Rejected] = []
    assert run.previous is not None
    run.progress = _read_inputs(ctx, run.previous, run.number, rejected)
    run.held += [r.frame for r in rejected]
    result.bad_records = _settle(ctx, rejected, run.number)
    result.incremental = run.progress
    result.timings["read_inputs_s"] = time.perf_counter() - start
    if not run.progress or _anything_new(ctx.spark, run.progress):
        return False
    result.skipped = (
        f"no new data since run {run.previous.run_id}: "
        + "; ".join(f"{p.input}: {p.detail}" for p in run.progress)
        + ". Nothing was written."
    )
    return True


def _compute(run: _Run) -> None:
    """The steps, then every selected output's rows: held in memory when the job writes several (so
    a failing one leaves all at their previous snapshot), checked against their schema."""
    ctx = run.ctx
    params = ctx.partition.placeholders() if ctx.partition else {}
    for p in run.progress:
        params.update({k: escape(v) for k, v in p.keys.items()})
    _run_steps(ctx, run.result, run.cached, params)
    selected = ctx.selected()
    if ctx.request.reset or any(p.refresh for p in run.progress):
        selected = [_replacing(o) for o in selected]
    frames = {o.name: with_run_id(ctx.spark.table(o.name), o, run.number) for o in selected}
    measured: dict[str, dict[str, dict[str, Any]]] = {}
    if len(selected) > 1:
        for output in selected:
            whole = ctx.partition is None and _whole_overwrite(output)
            early = _named_assertions(ctx.job, output) if whole else []
            kept, measured[output.name] = _compute_output(frames[output.name], output, ctx.name, early)
            run.held.append(kept)
            frames[output.name] = _coalesced(kept)
    for output in selected:
        hk = housekeeping.context(ctx.feed, output, run.number)
        frame = frames[output.name]
        tags = _check(frame, output, ctx.name, hk)
        condition = _slice(frame, output, ctx.partition, ctx.name)
        run.pending.append(_Pending(output, frame, tags, condition, measured.get(output.name), hk))
    run.properties = {state.RUN_ID: str(run.number), **ctx.snapshot_properties}
    for p in run.progress:
        run.properties.update(p.properties)


def _write_all(run: _Run) -> None:
    """Each output written in order (or reported from an earlier attempt's commit)."""
    ctx = run.ctx
    run.result.outputs = [
        _replay(ctx, p.output, run.landed[p.output.name])
        if p.output.name in run.landed
        else _write(ctx, p, run.properties)
        for p in run.pending
    ]


def _finish(run: _Run) -> None:
    """After the writes: the file-only run's state, archived input files, housekeeping."""
    ctx = run.ctx
    if not any(ctx.depots.is_iceberg(p.output.address) for p in run.pending):
        assert run.previous is not None
        state.save_file_state(ctx.settings, ctx.name, {**run.previous.values, **run.properties})
    for p in run.progress:
        if p.archive is not None and p.folder is not None and p.files:
            run.result.archived += incremental.archive_files(p.folder, p.archive, p.files)
    for pending, written in zip(run.pending, run.result.outputs, strict=True):
        if pending.output.housekeeping and written.published is not False:
            written.housekeeping = _housekeep(ctx, pending.output, pending.housekeeping)


def _read_inputs(
    ctx: RunContext, previous: state.RunState, run_number: int, rejected: list[bad_records.Rejected]
) -> list[incremental.Progress]:
    """Reads every input as a temp view; JSON and CSV file inputs leave their malformed records in
    `rejected` (engine/batch/bad_records.py)."""
    progress: list[incremental.Progress] = []
    for item in ctx.job.inputs:
        try:
            frame, info = _read_input(ctx, item, previous, run_number, rejected)
            if item.incremental is not None and frame is not None:
                frame, info = incremental.flare_block(
                    ctx.spark, item, frame, previous, ctx.request.for_input(item.name), ctx.request.reset
                )
            if info is not None:
                progress.append(info)
            if frame is not None:
                frame = io.apply_query(ctx.spark, item, frame) if item.incremental_read is not None else frame
                frame.createOrReplaceTempView(item.name)
        except (*SPARK_ERRORS, ValueError) as exc:
            raise JobFailed(
                f"{ctx.name}: input {item.name!r} ({item.dataset}) could not be read: {short(exc)}"
            ) from exc
    return progress


def _read_input(
    ctx: RunContext,
    item: Input,
    previous: state.RunState,
    run_number: int,
    rejected: list[bad_records.Rejected],
) -> tuple[DataFrame | None, incremental.Progress | None]:
    """One input, by how it is read: already read (a stream's batch), incrementally, with its
    malformed records set aside, or whole."""
    spark = ctx.spark
    if item.name in ctx.inputs_read:
        return io.apply_query(spark, item, ctx.inputs_read[item.name]), None
    if item.incremental_read is not None and ctx.depots.is_iceberg(item.address):
        return incremental.iceberg_appends(spark, item, previous, ctx.request.reset)
    if item.incremental_read is not None:
        return incremental.new_files(ctx, item, previous, run_number)
    if bad_records.applies(item, ctx.depots):
        frame, bad = bad_records.read(spark, item, ctx.depots, ctx.settings)
        rejected.append(bad)
        return frame, None
    written = {o.address.table for o in ctx.job.outputs}
    return io.read_input(spark, item, ctx.depots, ctx.settings, pin=item.address.table in written), None


def _replacing(output: Output) -> Output:
    """An append output of a run that read its inputs from scratch (a reset, or a full refresh after
    an upstream rewrite): the run's rows replace the table in one commit, as a first run's would."""
    if output.options.write_mode != "append":
        return output
    replaced = output.model_copy(deep=True)
    replaced.options.save_mode = "overwrite"
    return replaced


def _settle(
    ctx: RunContext, rejected: list[bad_records.Rejected], run_number: int
) -> list[bad_records.BadRecords]:
    try:
        return bad_records.settle(ctx, rejected, run_number)
    except (*SPARK_ERRORS, ValueError) as exc:
        raise JobFailed(
            f"{ctx.name}: malformed input records could not be quarantined: {short(exc)}"
        ) from exc


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


def _run_steps(ctx: RunContext, result: JobResult, cached: list[str], params: dict[str, str]) -> None:
    """Each step's SQL as a view, its functions applied, its cache commands run, in order."""
    for step in ctx.job.steps:
        for seq in step.sequence:
            t0 = time.perf_counter()
            try:
                sql = substitute(seq.sql, params, f"step {seq.name!r}") if placeholders(seq.sql) else seq.sql
                _run_step(ctx, seq, sql, result, cached)
            except (*SPARK_ERRORS, ValueError) as exc:
                raise JobFailed(f"{ctx.name}: step {seq.name!r} failed: {short(exc)}") from exc
            doc = (f"{step.name}: " if step.name else "") + (seq.doc or "").strip()
            comment = "".join(f"-- {line}\n" for line in doc.strip().splitlines())
            result.sql.append((seq.name, comment + sql.strip()))
            result.timings[f"step_{seq.name}_s"] = time.perf_counter() - t0


def _run_step(ctx: RunContext, seq: Sequence, sql: str, result: JobResult, cached: list[str]) -> None:
    spark = ctx.spark
    frame = spark.sql(sql)
    if seq.functions:
        frame = apply_functions(frame, seq.functions)
        result.functions[seq.name] = [fn.name for fn in seq.functions]
    frame.createOrReplaceTempView(seq.name)
    if ctx.job.explain:
        result.plans[seq.name] = frame._jdf.queryExecution().toString()
    for command in seq.commands:
        view = command.sequence_name or seq.name
        if command.name == "unpersist":
            spark.catalog.uncacheTable(view)
        else:
            spark.catalog.cacheTable(view, getattr(StorageLevel, command.level))
            cached.append(view)


def _compute_output(
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


def _write(ctx: RunContext, pending: _Pending, properties: dict[str, str]) -> OutputResult:
    """Writes one output (on an audit branch first with write-audit-publish), then checks what it
    wrote, publishes it when the checks allow, tags the snapshot with the run and previews it.
    `pending.measured` (held results only): the column assertion metrics taken before the write."""
    t0 = time.perf_counter()
    output, df = pending.output, pending.frame
    to_iceberg = ctx.depots.is_iceberg(output.address)
    branch = output.options.branch or "main"
    wap = output.options.write_audit_publish if to_iceberg else None
    audit = f"{wap.branch_prefix}_{_run_tag(ctx.run_id)}" if wap else None
    result = _commit(ctx, pending, properties, audit)
    if to_iceberg:
        _describe_commit(ctx, result, audit or branch, pending.tags)
    else:
        result.rows_written = df.count()
    written, replaced = _written(ctx, result, pending)
    measured = pending.measured if replaced and pending.measured else None
    result.checks = assertions.evaluate_all(ctx.spark, written, _named_assertions(ctx.job, output), measured)
    if audit and wap:
        _publish(ctx, result, audit, branch, keep=wap.keep_branch)
    if to_iceberg and ctx.run_id and result.snapshot_id and result.published is not False:
        _tag_run(ctx, result)
    _preview(ctx, result, written, pending.slice_condition)
    result.seconds = time.perf_counter() - t0
    return result


def _commit(
    ctx: RunContext, pending: _Pending, properties: dict[str, str], audit: str | None
) -> OutputResult:
    """The write itself: one Iceberg commit (to `audit` when given), or the files."""
    spark, output, df = ctx.spark, pending.output, pending.frame
    address = output.address
    to_iceberg = ctx.depots.is_iceberg(address)
    exists = to_iceberg and spark.catalog.tableExists(address.table)
    before = refs.head(spark, address.table, output.options.branch or "main")[0] if exists else None
    evolution: list[str] = []
    try:
        if to_iceberg:
            if audit:
                if not exists:
                    iceberg.create_table(spark, df, output)
                refs.create_audit_branch(spark, address.table, audit, output.options.branch or "main")
            evolution = iceberg.write(
                spark,
                df,
                output,
                branch=audit,
                properties=properties,
                slice_condition=pending.slice_condition,
                private=audit is not None,
            )
            target = address.table
        else:
            target = io.write_files(df, output, ctx.depots, ctx.settings)
    except (*SPARK_ERRORS, ValueError) as exc:
        raise JobFailed(
            f"{ctx.name}: output {output.name!r} ({output.dataset}) was not written: {short(exc)}"
        ) from exc
    return OutputResult(
        name=output.name,
        dataset=output.dataset,
        target=target,
        format="iceberg" if to_iceberg else output.format,
        save_mode=output.options.write_mode,
        rows_written=0,
        previous_snapshot_id=before,
        schema=[(f.name, f.dataType.simpleString()) for f in df.schema.fields],
        column_tags=pending.tags,
        partition_evolution=evolution,
        audit_branch=audit,
    )


def _describe_commit(ctx: RunContext, result: OutputResult, branch: str, tags: dict[str, list[str]]) -> None:
    """The commit's snapshot, summary and partition spec; the column tags stored on the table."""
    spark, target = ctx.spark, result.target
    result.snapshot_id, result.summary = refs.written(spark, target, branch)
    result.branch = branch
    result.rows_written = result.counter("added-records")
    result.partition_spec = ", ".join(iceberg.partition_terms(spark, target)) or "unpartitioned"
    _after_commit(result, ctx.name, lambda: iceberg.store_column_tags(spark, target, tags))


def _written(ctx: RunContext, result: OutputResult, pending: _Pending) -> tuple[DataFrame, bool]:
    """What the write left in the table, for checks and the preview, and whether it is the held
    result itself: the commit made the table exactly its rows, so no second scan is needed."""
    df = pending.frame
    if not result.snapshot_id:
        return df, False
    written = ctx.spark.read.option("snapshot-id", result.snapshot_id).table(result.target)
    replaced = pending.measured is not None and _replaced_by(
        df, written, pending.output, pending.slice_condition
    )
    return (df, True) if replaced else (written, False)


def _preview(ctx: RunContext, result: OutputResult, written: DataFrame, condition: Column | None) -> None:
    lines = ctx.job.show_preview_lines
    if ctx.partition is not None and condition is not None:
        result.partitions = _partitions_written(written, ctx.partition, lines)
        result.preview = [r for p in result.partitions for r in p.preview][:lines]
    elif lines:
        result.preview = [r.asDict() for r in written.limit(lines).collect()]


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


def _tag_run(ctx: RunContext, result: OutputResult) -> None:
    assert result.snapshot_id is not None
    tag = f"run_{_run_tag(ctx.run_id)}"
    _after_commit(
        result,
        ctx.name,
        lambda: refs.tag_snapshot(ctx.spark, result.target, result.snapshot_id, tag, RUN_TAG_RETAIN_DAYS),
    )
    result.snapshot_tag = tag


def _after_commit(result: OutputResult, name: str, commit: Callable[[], None]) -> None:
    """A metadata commit after the rows landed (column tags, the run's tag). It retries conflicts
    itself; a failure still ends the run, saying the rows are in, so a re-execution of the run
    finds them (engine/batch/idempotence.py) and finishes this step without writing them twice."""
    try:
        commit()
    except Exception as exc:  # whatever broke, the message must say the rows are committed
        raise JobFailed(
            f"{name}: output {result.name!r} ({result.dataset}): rows committed as snapshot "
            f"{result.snapshot_id}; tagging failed: {short(exc)}. Re-execute the run: it finds its "
            "committed rows and does not write them again"
        ) from exc


def _landed(ctx: RunContext) -> dict[str, tuple[int, dict[str, str]]]:
    """Outputs an earlier attempt of this Dagster run committed: name -> (snapshot id, summary)."""
    ident = idempotence.identity(dict(ctx.snapshot_properties))
    if not ident:
        return {}
    found = {}
    for output in ctx.selected():
        if ctx.depots.is_iceberg(output.address):
            branch = output.options.branch or "main"
            hit = idempotence.landed(ctx.spark, output.address.table, branch, ident)
            if hit is not None:
                found[output.name] = hit
    return found


def _replay(ctx: RunContext, output: Output, landed: tuple[int, dict[str, str]]) -> OutputResult:
    """The result of a write an earlier attempt of this run committed: its snapshot, checks on it, and
    the metadata commits that attempt may not have finished (column tags, the run's tag)."""
    t0 = time.perf_counter()
    spark = ctx.spark
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
    _after_commit(result, ctx.name, lambda: iceberg.store_column_tags(spark, table, tags))
    result.checks = assertions.evaluate_all(spark, written, _named_assertions(ctx.job, output), None)
    if ctx.run_id:
        _tag_run(ctx, result)
    _preview(ctx, result, written, None)
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


def _housekeep(ctx: RunContext, output: Output, hk: HousekeepingContext) -> housekeeping.HousekeepingResult:
    """After the run is committed: a failure here leaves the written data and the run's state as
    they are; the next run, or the housekeeping job, finishes the work."""
    try:
        return housekeeping.run(ctx.spark, output, ctx.depots, ctx.settings, hk)
    except (*SPARK_ERRORS, ValueError, OSError) as exc:
        raise JobFailed(
            f"{ctx.name}: output {output.name!r} ({output.dataset}) was written, but its housekeeping "
            f"failed: {short(exc)}; the next run or the housekeeping job finishes it"
        ) from exc


def _run_tag(run_id: str | None) -> str:
    """A short, identifier-safe name for the run (Dagster's run id prefix, as its UI shows it)."""
    return (run_id or time.strftime("%Y%m%d%H%M%S")).split("-")[0]


def _publish(ctx: RunContext, result: OutputResult, audit: str, branch: str, keep: bool) -> None:
    """Fast-forwards the target branch when every blocking check passed; otherwise leaves it alone."""
    failed = [c.name for c in result.checks if c.blocking and not c.passed]
    if failed:
        result.published = False
        return
    try:
        refs.publish(ctx.spark, result.target, audit, branch)
    except ValueError as exc:
        raise JobFailed(f"{ctx.name}: output {result.name!r}: {exc}") from exc
    result.published = True
    result.branch = branch
    if not keep:
        refs.drop_branch(ctx.spark, result.target, audit)
