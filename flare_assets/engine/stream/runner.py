"""Stream jobs on Structured Streaming: the stream input read from a landing folder or an Iceberg
table, the job's steps applied to each micro-batch, progress kept in a checkpoint.

Exactly-once: the checkpoint says which batches are done; a batch that was cut short runs again on
restart with the same data and id. In forEachBatchMode every Iceberg commit of a batch carries the
stream's id and the batch id in its snapshot summary, so a rerun batch skips the outputs that
already have it where readers see it: in the output branch's head or its ancestors
(engine/stream/micro_batch.py). A merge stage branch a stopped run left is published or dropped before the
first batch. The direct Iceberg sink does the same by query and epoch id (engine/stream/iceberg_sink.py).
"""

from __future__ import annotations

import dataclasses
import fcntl
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from flare_assets.engine.errors import SPARK_ERRORS, JobFailed, short
from flare_assets.engine.stream import iceberg_sink
from flare_assets.engine.stream.checkpoints import landing, last_started
from flare_assets.engine.stream.context import StreamQuery, StreamRun
from flare_assets.engine.stream.micro_batch import batch_metrics, observed, process_batch, settle_stages
from flare_assets.engine.stream.results import BatchResult, StreamResult
from flare_assets.engine.stream.source import read_stream
from flare_assets.engine.tables import access, io, quarantine
from flare_assets.spec.model import Job, Streaming
from flare_assets.spec.streams import stream_file_options, stream_input, streaming, target_output

STOP_WAIT_S = 60.0

__all__ = ["BatchResult", "StreamResult", "StreamRun", "run_stream"]


def run_stream(run: StreamRun) -> StreamResult:
    """Runs the stream query with the job's trigger until the available data is processed (Once,
    AvailableNow), or until `should_stop()` or `max_batches` committed batches (ProcessingTime),
    then stops it between batches. `on_batch` sees each batch once it is committed, in order.
    One query at a time per checkpoint: a second one fails at once, naming the checkpoint. `log`
    receives what the run did besides its batches (a stage branch published or dropped ...)."""
    checkpoint = run.checkpoint
    checkpoint.mkdir(parents=True, exist_ok=True)
    with (checkpoint.parent / f".{checkpoint.name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise JobFailed(
                f"{run.ctx.name}: another run is processing this stream (checkpoint {checkpoint} is in "
                "use); it resumes from the checkpoint when that run ends"
            ) from exc
        return _run_locked(run)


def with_trigger(writer: DataStreamWriter, mode: Streaming) -> DataStreamWriter:
    if mode.trigger_mode == "Once":
        return writer.trigger(once=True)
    if mode.trigger_mode == "AvailableNow":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{int(mode.interval_s * 1000)} milliseconds")


def _run_locked(run: StreamRun) -> StreamResult:
    query = _prepare(run)
    result = StreamResult(
        query_id="",
        checkpoint=str(run.checkpoint),
        trigger=streaming(run.ctx.job).trigger_mode,
        quarantine_table=query.q_target.address.table if query.q_target else None,
    )
    result.notes += _before_first_batch(query)
    for note in result.notes if run.log is not None else []:
        run.log(note)
    done: queue.Queue[BatchResult] = queue.Queue()
    failure: list[BaseException] = []
    queries, collect = _start(query, done, failure)
    result.query_id = str(queries[0].id)
    try:
        _drive(run, queries, collect, done, result)
    finally:
        for q in queries:
            if q.isActive:
                q.stop()
    if failure:
        raise failure[0]
    for q in queries:
        error = q.exception()
        if error is not None:
            raise JobFailed(f"{run.ctx.name}: the stream query failed: {str(error.desc).splitlines()[0]}")
    return result


def _prepare(run: StreamRun) -> StreamQuery:
    """The stream's source and quarantine table."""
    ctx = run.ctx
    try:
        source = read_stream(ctx.spark, ctx.job, ctx.depots, ctx.settings)
    except (*SPARK_ERRORS, ValueError) as exc:
        raise JobFailed(
            f"{ctx.name}: stream input {stream_input(ctx.job).name!r} could not be read: {short(exc)}"
        ) from exc
    target = target_output(ctx.job, ctx.depots)
    q_target = quarantine.table_for(target) if target is not None and source.permissive else None
    return StreamQuery(run, source, q_target)


def _before_first_batch(query: StreamQuery) -> list[str]:
    """Landed files the stream will not read (said, never skipped silently), and stage branches an
    earlier run left, settled."""
    ctx, notes = query.ctx, []
    if query.source.fmt != "iceberg":
        folder = Path(io.folder(stream_input(ctx.job).address, ctx.depots, ctx.settings))
        landed = landing(folder, query.checkpoint, stream_file_options(ctx.job, ctx.depots))
        notes += [f"not read: {note}" for note in landed.notes()]
    if streaming(ctx.job).for_each_batch_mode:
        try:
            notes += settle_stages(ctx.spark, ctx.job, ctx.depots, query.checkpoint)
        except (*SPARK_ERRORS, ValueError) as exc:
            why = short(exc)
            raise JobFailed(
                f"{ctx.name}: an earlier run's stage branches could not be settled: {why}"
            ) from exc
    return notes


def _start(
    query: StreamQuery, done: queue.Queue[BatchResult], failure: list[BaseException]
) -> tuple[list[StreamingQuery], Callable[[], None]]:
    """The running queries, and what collects their committed batches into `done`."""
    if not streaming(query.ctx.job).for_each_batch_mode:
        queries = iceberg_sink.start(query, with_trigger)
        seen: set[int] = set()
        return queries, lambda: iceberg_sink.collect(query, queries, seen, done)
    return [_start_for_each_batch(query, done, failure)], lambda: None  # batches arrive through `done`


def _start_for_each_batch(
    query: StreamQuery, done: queue.Queue[BatchResult], failure: list[BaseException]
) -> StreamingQuery:
    mode, source = streaming(query.ctx.job), query.source
    attempted = last_started(query.checkpoint)  # batches up to this one may have committed already
    started: list[StreamingQuery] = []
    ready = threading.Event()

    def counts() -> tuple[int, int] | None:
        ready.wait()
        return batch_metrics(started[0])

    shared = dataclasses.replace(query, metrics=counts)

    def process(batch: DataFrame, batch_id: int) -> None:
        try:
            done.put(process_batch(shared, batch, batch_id, attempted is None or batch_id > attempted))
        except BaseException as exc:  # the query fails with it; the run reports this one, not py4j's
            failure.append(exc)
            raise

    writer = observed(source.frame, source.permissive).writeStream
    writer = writer.option("checkpointLocation", str(query.checkpoint))
    writer = with_trigger(writer.outputMode(mode.output_mode).foreachBatch(process), mode)
    started.append(writer.start())
    ready.set()
    return started[0]


def _drive(
    run: StreamRun,
    queries: list[StreamingQuery],
    collect: Callable[[], None],
    done: queue.Queue[BatchResult],
    result: StreamResult,
) -> None:
    """Hands on committed batches until the query ends or the run is asked to stop between batches."""
    waiting: dict[int, BatchResult] = {}

    def report(final: bool) -> None:
        while not done.empty():
            batch = done.get()
            waiting[batch.batch_id] = batch
        _report(run, queries[0], waiting, result, final)

    while True:
        active = any(q.isActive for q in queries)
        collect()
        report(final=not active)
        if not active:
            return
        if run.should_stop is not None and run.should_stop():
            result.stopped = "terminated"
        elif run.max_batches and len(result.batches) >= run.max_batches:
            result.stopped = f"{run.max_batches} micro-batches committed"
        else:
            queries[0].awaitTermination(0.2)  # returns as soon as the query ends
            continue
        for q in queries:
            _stop_between_batches(q)
        collect()
        report(final=True)
        return


def _stop_between_batches(query: StreamingQuery) -> None:
    """Lets a running micro-batch commit, then stops the query (a cut batch would rerun anyway)."""
    deadline = time.monotonic() + STOP_WAIT_S
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


def _report(
    run: StreamRun,
    query: StreamingQuery,
    waiting: dict[int, BatchResult],
    result: StreamResult,
    final: bool,
) -> None:
    """Hands on the waiting batches whose checkpoint commit is recorded (their progress is posted),
    with offsets."""
    if not waiting:
        return
    progress = {p["batchId"]: p for p in query.recentProgress}
    for batch_id in sorted(waiting):
        posted = progress.get(batch_id)
        if posted is None and not final:
            break
        batch = waiting.pop(batch_id)
        if posted is not None:
            sources = posted.get("sources") or [{}]
            batch.start_offset, batch.end_offset = sources[0].get("startOffset"), sources[0].get("endOffset")
        if batch.arrived_at is None and isinstance(batch.end_offset, dict):
            snapshot_id = batch.end_offset.get("snapshot_id")
            batch.arrived_at = _snapshot_time(run.ctx.spark, run.ctx.job, snapshot_id)
        result.batches.append(batch)
        if run.on_batch is not None:
            run.on_batch(result, batch)


def _snapshot_time(spark: SparkSession, job: Job, snapshot_id: Any) -> float | None:
    """When an upstream Iceberg snapshot was committed: the arrival time of a table stream's rows."""
    if snapshot_id is None:
        return None
    snapshot = access.java_table(spark, stream_input(job).address.table).snapshot(int(snapshot_id))
    return snapshot.timestampMillis() / 1000 if snapshot is not None else None
