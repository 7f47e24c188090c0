"""forEachBatchMode: false. The job's steps run as one streaming query written by Iceberg's own
streaming sink, which commits each epoch once (it records the query and epoch ids in the snapshot
summary and skips an epoch it already committed). Malformed records go to the quarantine table by a
second query on the same source, with its own checkpoint beside the first, each batch's rows with
its batch id and its commit with the stream's markers (as forEachBatchMode writes them)."""

from __future__ import annotations

import queue
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from flare_assets.engine.errors import SPARK_ERRORS, JobFailed, short
from flare_assets.engine.stream.checkpoints import batch_files
from flare_assets.engine.stream.context import StreamQuery
from flare_assets.engine.stream.micro_batch import STREAM_BATCH, STREAM_ID, stream_id
from flare_assets.engine.stream.results import BatchResult
from flare_assets.engine.stream.source import FILE_PATH, FILE_TIME
from flare_assets.engine.tables import iceberg, io, quarantine, refs
from flare_assets.spec.model import Output, Streaming
from flare_assets.spec.streams import stream_input, streaming

QUERY_ID, EPOCH_ID = "spark.sql.streaming.queryId", "spark.sql.streaming.epochId"
Trigger = Callable[[DataStreamWriter, Streaming], DataStreamWriter]


def start(query: StreamQuery, with_trigger: Trigger) -> list[StreamingQuery]:
    """Starts the output's query (and the quarantine's); the first is the one whose batches count."""
    ctx = query.ctx
    try:
        queries = [_start_output(query, with_trigger)]
        if query.q_target is not None:
            queries.append(_start_quarantine(query, with_trigger))
    except SPARK_ERRORS as exc:
        raise JobFailed(f"{ctx.name}: the stream could not start: {short(exc)}") from exc
    return queries


def _start_output(query: StreamQuery, with_trigger: Trigger) -> StreamingQuery:
    """The job's steps over the stream's good rows, streamed into the output table."""
    ctx, source = query.ctx, query.source
    spark, job = ctx.spark, ctx.job
    item = stream_input(job)
    good = source.frame
    if source.permissive:
        good = good.filter(F.col(quarantine.CORRUPT).isNull()).drop(quarantine.CORRUPT)
    if source.fmt != "iceberg":
        good = good.drop(FILE_PATH, FILE_TIME)
    output = job.outputs[0]
    table = output.address.table
    for other in job.inputs:
        if other is not item:
            io.read_input(spark, other, ctx.depots, ctx.settings).createOrReplaceTempView(other.name)
    io.apply_query(spark, item, good).createOrReplaceTempView(item.name)
    for step in job.steps:
        for seq in step.sequence:
            spark.sql(seq.sql).createOrReplaceTempView(seq.name)
    frame = spark.table(output.name)
    if not spark.catalog.tableExists(table):
        iceberg.create_table(spark, frame, output)
    spec = output.options.partition_fields
    if spec is not None:
        iceberg.evolve_partitions(spark, table, spec)
    mode = streaming(job)
    writer = (
        frame.writeStream.format("iceberg")
        .outputMode(mode.output_mode)
        .option("checkpointLocation", str(query.checkpoint))
        .option("fanout-enabled", "true")
    )
    return with_trigger(writer, mode).toTable(table)


def _start_quarantine(query: StreamQuery, with_trigger: Trigger) -> StreamingQuery:
    """A second query on the same source: its malformed records, with reasons, to the quarantine."""
    ctx, source, target = query.ctx, query.source, query.q_target
    assert source.schema is not None and target is not None
    spark = ctx.spark
    rejected = quarantine.reasons(
        source.frame.filter(F.col(quarantine.CORRUPT).isNotNull()), source.fmt, source.schema
    )
    # Spark refuses a raw-file query reading only the corrupt-record column: read the others too
    data = [F.col(f.name) for f in source.schema.fields if f.name != quarantine.CORRUPT]
    rejected = rejected.withColumn("record", F.coalesce("record", F.to_json(F.struct(*data))))
    rows = quarantine.rows(rejected, ctx.name, F.lit(None), F.col(FILE_PATH))
    if not spark.catalog.tableExists(target.address.table):
        iceberg.create_table(spark, rows, target)
    side = rows.writeStream.outputMode("append").foreachBatch(_quarantine(target, query.checkpoint))
    side = side.option("checkpointLocation", str(query.checkpoint / "quarantine"))
    return with_trigger(side, streaming(ctx.job)).start()


def _quarantine(target: Output, checkpoint: Path) -> Callable[[DataFrame, int], None]:
    """The quarantine query's batches: each one's rows with its batch id, appended once (a replayed
    batch finds its markers on the table's main branch and writes nothing)."""

    def write(frame: DataFrame, batch_id: int) -> None:
        props = {STREAM_ID: stream_id(checkpoint / "quarantine"), STREAM_BATCH: str(batch_id)}
        spark = frame.sparkSession
        if refs.find_snapshot(spark, target.address.table, props, ordered_by=STREAM_BATCH):
            return
        rows = frame.withColumn("batch_id", F.lit(batch_id).cast("bigint")).persist()
        try:
            if rows.count():
                iceberg.write(spark, rows, target, properties=props)
        finally:
            rows.unpersist()

    return write


def collect(
    query: StreamQuery, queries: list[StreamingQuery], seen: set[int], done: queue.Queue[BatchResult]
) -> None:
    """Committed epochs of the output's query as batch results: rows from its progress, files from
    the checkpoint, rows written from the snapshot the sink committed for that epoch, and the rows
    the quarantine query committed in its epoch of the same number (both read the same files)."""
    spark, checkpoint, q_target = query.ctx.spark, query.checkpoint, query.q_target
    main = queries[0]
    output = query.ctx.job.outputs[0]
    for progress in main.recentProgress:
        batch_id = int(progress["batchId"])
        if batch_id in seen or not (checkpoint / "commits" / str(batch_id)).exists():
            continue
        side_done = (checkpoint / "quarantine" / "commits" / str(batch_id)).exists()
        if len(queries) > 1 and queries[1].isActive and not side_done:
            continue  # counted once the quarantine query has committed it too
        seen.add(batch_id)
        files, arrived = batch_files(checkpoint, batch_id)
        started = datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00")).timestamp()
        batch = BatchResult(
            batch_id=batch_id,
            rows_read=int(progress.get("numInputRows", 0)),
            files=files,
            arrived_at=arrived,
            committed_at=started + progress.get("durationMs", {}).get("triggerExecution", 0) / 1000,
        )
        marker = {QUERY_ID: str(main.id), EPOCH_ID: str(batch_id)}
        found = refs.find_snapshot(spark, output.address.table, marker, ordered_by=EPOCH_ID)
        if found:
            batch.snapshot_ids[output.name] = found[0]
            batch.rows_written[output.name] = int(found[1].get("added-records", 0))
        if q_target is not None and len(queries) > 1:
            marker = {STREAM_ID: str(queries[1].id), STREAM_BATCH: str(batch_id)}
            rejected = refs.find_snapshot(spark, q_target.address.table, marker, ordered_by=STREAM_BATCH)
            batch.rows_quarantined = int(rejected[1].get("added-records", 0)) if rejected else 0
        done.put(batch)
