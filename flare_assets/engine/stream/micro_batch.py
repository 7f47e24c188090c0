"""One micro-batch of a forEachBatchMode stream: the job's steps and writes, malformed records to
quarantine, each Iceberg commit tagged with the stream and batch ids and skipped when an earlier
attempt of the same batch already made it.

A batch is read once where it can be: the stream's source counts its rows and malformed records as
they are read (`observed`), the write reads them, the checkpoint's file log names its files and the
commit's summary counts the rows written; malformed records are read again only when there are
some. A job whose plan may read the batch in part or twice (a limit, a join, several outputs ...)
holds the batch in memory and counts it first, as a job of its own."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from flare_assets.depots import DepotMap
from flare_assets.engine.batch.runner import run_job
from flare_assets.engine.stream.checkpoints import batch_files, local_path, replayed_batch
from flare_assets.engine.stream.context import StreamQuery
from flare_assets.engine.stream.results import BatchResult
from flare_assets.engine.stream.source import FILE_PATH, FILE_TIME, StreamSource
from flare_assets.engine.tables import iceberg, quarantine, refs
from flare_assets.spec.model import Job
from flare_assets.spec.streams import stream_input

STREAM_ID, STREAM_BATCH = iceberg.STREAM_ID, iceberg.STREAM_BATCH
BATCH_METRICS = "flare_batch"


def stream_id(checkpoint: Path) -> str:
    """The query id Spark keeps in the checkpoint: the same across restarts, new with a new checkpoint."""
    return str(json.loads((checkpoint / "metadata").read_text())["id"])


def settle_stages(spark: SparkSession, job: Job, depots: DepotMap, checkpoint: Path) -> list[str]:
    """Before a run's first batch: merge stage branches an earlier run of this stream left on its
    outputs are published (exactly the batch about to be replayed, on top of the output's branch) or
    dropped (the batch runs again). Returns what was done."""
    if not (checkpoint / "metadata").exists():
        return []
    stream, replay = stream_id(checkpoint), replayed_batch(checkpoint)
    notes = []
    for output in job.outputs:
        if depots.is_iceberg(output.address):
            branch = output.options.branch or "main"
            notes += iceberg.settle_stages(spark, output.address.table, branch, stream, replay)
    return notes


def observed(frame: DataFrame, permissive: bool) -> DataFrame:
    """The stream with each batch's counts taken while its rows are read (Spark's CollectMetrics on
    the source, no job of its own): rows, and for JSON and CSV the malformed records."""
    metrics = [F.count(F.lit(1)).alias("rows")]
    if permissive:
        metrics.append(F.count(quarantine.CORRUPT).alias("bad"))
    return frame.observe(BATCH_METRICS, *metrics)


def batch_metrics(query: StreamingQuery) -> tuple[int, int] | None:
    """The running batch's counts so far (rows, malformed records), from the query's current
    execution: complete once the batch's rows were read exactly once (see `_reads_batch_once`)."""
    found = query._jsq.streamingQuery().lastExecution().observedMetrics().get(BATCH_METRICS)
    if found.isEmpty():
        return None
    row = found.get()
    return int(row.getLong(0)), int(row.getLong(1)) if row.size() > 1 else 0


@dataclass
class _Batch:
    """One micro-batch being processed: its rows, the markers its commits carry, its result."""

    frame: DataFrame
    props: dict[str, str]
    first_attempt: bool
    result: BatchResult


def process_batch(
    query: StreamQuery, frame: DataFrame, batch_id: int, first_attempt: bool = False
) -> BatchResult:
    """Runs one batch. With the query's `metrics` (the counts the stream's observed source takes)
    and one Iceberg output written by a plain append or overwrite, the batch's rows are read once:
    by the write itself; its malformed records, if any, are quarantined after it. Otherwise the batch
    is held in memory and counted first. `first_attempt`: the checkpoint had no offsets for this
    batch when the run started, so no earlier attempt can have committed any of it and its commit
    markers are not looked for."""
    t0 = time.perf_counter()
    ctx = query.ctx
    props = {STREAM_ID: stream_id(query.checkpoint), STREAM_BATCH: str(batch_id)}
    batch = _Batch(frame, props, first_attempt, BatchResult(batch_id=batch_id))
    result = batch.result
    for output in [] if first_attempt else ctx.job.outputs:
        found = ctx.depots.is_iceberg(output.address) and refs.find_snapshot(
            frame.sparkSession, output.address.table, props, output.options.branch or "main", STREAM_BATCH
        )
        if found:  # an earlier attempt of this batch committed it
            result.replayed.append(output.name)
            result.snapshot_ids[output.name] = found[0]
    todo = {o.name for o in ctx.job.outputs} - set(result.replayed)
    if query.metrics is not None and todo and _one_pass(ctx.job, ctx.depots):
        _in_one_pass(query, batch)
    else:
        _held(query, batch, todo)
    result.committed_at = time.time()
    result.seconds = time.perf_counter() - t0
    return result


def _one_pass(job: Job, depots: DepotMap) -> bool:
    """Whether the job's write reads the batch once, so the counts the read takes are the batch's."""
    if len(job.outputs) != 1:
        return False
    output = job.outputs[0]
    return (
        depots.is_iceberg(output.address)
        and output.options.write_mode in ("append", "overwrite", "overwrite-dynamic")
        and output.options.commit_by is None
    )


# Plan nodes that read every row of their input, once.
WHOLE_READS = {
    "Aggregate",
    "CollectMetrics",
    "Deduplicate",
    "Distinct",
    "Expand",
    "Filter",
    "Generate",
    "Project",
    "Repartition",
    "RepartitionByExpression",
    "RebalancePartitions",
    "Sort",
    "SubqueryAlias",
    "View",
    "Window",
    "WindowGroupLimit",
}


def _reads_batch_once(spark: SparkSession, view: str) -> bool:
    """Whether the output's plan reads the batch (its only leaf) once and whole: no limit, join,
    sample or subquery that could read part of it, or read it twice."""
    plan = spark.table(view)._jdf.queryExecution().optimizedPlan()
    if "subquery" in plan.toString().lower():
        return False
    nodes, leaves = [plan], 0
    while nodes:
        node = nodes.pop()
        children = node.children()
        if children.size() == 0:
            leaves += 1
            if node.nodeName() != "LogicalRDD":
                return False
        elif node.nodeName() not in WHOLE_READS:
            return False
        nodes += [children.apply(i) for i in range(children.size())]
    return leaves == 1


def _counts(batch: DataFrame, source: StreamSource) -> tuple[int, int]:
    """Rows and malformed records of the batch, by a job of their own."""
    stats = [F.count(F.lit(1)).alias("rows")]
    if source.permissive:
        stats.append(F.count(quarantine.CORRUPT).alias("bad"))
    row = batch.agg(*stats).collect()[0]
    return int(row[0]), int(row[1]) if source.permissive else 0


def _in_one_pass(query: StreamQuery, batch: _Batch) -> None:
    """The write reads the batch; the counts come from that read, the files from the checkpoint's
    file log, rows written from the commit's summary. Malformed records are quarantined after the
    write (a replay finds the output's marker and quarantines them in `_held`)."""
    source, result = query.source, batch.result
    good = batch.frame
    if source.permissive:
        good = good.filter(F.col(quarantine.CORRUPT).isNull()).drop(quarantine.CORRUPT)
    if source.fmt != "iceberg":
        good = good.drop(FILE_PATH, FILE_TIME)
        result.files, result.arrived_at = batch_files(query.checkpoint, result.batch_id)
    _run(query, batch, good, None)
    assert query.metrics is not None
    spark = batch.frame.sparkSession
    counted = query.metrics() if _reads_batch_once(spark, query.ctx.job.outputs[0].name) else None
    if counted is None or counted[0] == 0:  # read in part, twice or not at all: counted on its own
        counted = _counts(batch.frame, source)
    result.rows_read, result.rows_quarantined = counted
    if result.rows_quarantined and query.q_target is not None:
        _quarantine(query, batch, batch.frame)


def _run(query: StreamQuery, batch: _Batch, good: DataFrame, only: set[str] | None) -> None:
    """The job on the batch's good rows, as a run of the engine; its commits carry the markers."""
    ctx = dataclasses.replace(
        query.ctx,
        spark=batch.frame.sparkSession,
        only=frozenset(only) if only is not None else None,
        inputs_read={stream_input(query.ctx.job).name: good},
        snapshot_properties=batch.props,
    )
    batch.result.job = run_job(ctx)
    for out in batch.result.job.outputs:
        batch.result.rows_written[out.name] = out.rows_written
        batch.result.snapshot_ids[out.name] = out.snapshot_id


def _quarantine(query: StreamQuery, batch: _Batch, frame: DataFrame) -> None:
    """Appends the batch's malformed records with their reasons, unless an attempt already did."""
    spark, source, target = frame.sparkSession, query.source, query.q_target
    assert target is not None
    table = target.address.table
    if batch.first_attempt or refs.find_snapshot(spark, table, batch.props, "main", STREAM_BATCH) is None:
        assert source.schema is not None
        rejected = quarantine.reasons(
            frame.filter(F.col(quarantine.CORRUPT).isNotNull()), source.fmt, source.schema
        )
        name, batch_id = query.ctx.name, batch.result.batch_id
        quarantine.write(spark, rejected, target, name, batch_id, F.col(FILE_PATH), batch.props)


def _held(query: StreamQuery, batch: _Batch, todo: set[str]) -> None:
    """The batch held in memory: counted and quarantined first, then the outputs left to write."""
    source, result = query.source, batch.result
    frame = batch.frame.persist()
    try:
        stats = [F.count(F.lit(1)).alias("rows")]
        if source.fmt != "iceberg":
            stats += [
                F.collect_set(FILE_PATH).alias("files"),
                F.min(F.col(FILE_TIME).cast("double")).alias("arrived"),
            ]
        if source.permissive:
            stats.append(F.count(quarantine.CORRUPT).alias("bad"))
        row = frame.agg(*stats).collect()[0].asDict()
        result.rows_read = int(row["rows"])
        result.files = sorted(local_path(f) for f in row.get("files") or [])
        result.arrived_at = row.get("arrived")
        good = frame
        if source.permissive:
            result.rows_quarantined = int(row["bad"])
            good = frame.filter(F.col(quarantine.CORRUPT).isNull()).drop(quarantine.CORRUPT)
            if result.rows_quarantined and query.q_target is not None:
                _quarantine(query, batch, frame)
        if source.fmt != "iceberg":
            good = good.drop(FILE_PATH, FILE_TIME)
        if todo and result.rows_read > result.rows_quarantined:
            _run(query, batch, good, todo)
    finally:
        frame.unpersist()
