"""Stream jobs on Structured Streaming: the stream input read from a landing folder or an Iceberg
table, the job's steps applied to each micro-batch, progress kept in a checkpoint.

Exactly-once: the checkpoint says which batches are done; a batch that was cut short runs again on
restart with the same data and id. In forEachBatchMode every Iceberg commit of a batch carries the
stream's id and the batch id in its snapshot summary, so a rerun batch skips the outputs that
already have it where readers see it: in the output branch's head or its ancestors
(engine/micro_batch.py). A merge stage branch a stopped run left is published or dropped before the
first batch. The direct Iceberg sink does the same by query and epoch id (engine/iceberg_sink.py).
"""

from __future__ import annotations

import fcntl
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from flare_assets.checkpoints import landing, last_started
from flare_assets.depots import DepotMap
from flare_assets.engine import iceberg, iceberg_sink, io, quarantine
from flare_assets.engine.errors import SPARK_ERRORS, JobFailed, short
from flare_assets.engine.micro_batch import batch_metrics, observed, process_batch, settle_stages
from flare_assets.engine.stream_results import BatchResult, StreamResult
from flare_assets.engine.stream_source import read_stream
from flare_assets.settings import Settings
from flare_assets.spec.model import Job, Streaming
from flare_assets.spec.streams import stream_file_options, stream_input, streaming, target_output

STOP_WAIT_S = 60.0

__all__ = ["BatchResult", "StreamResult", "run_stream"]


def run_stream(
    spark: SparkSession,
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str,
    checkpoint: Path,
    on_batch: Callable[[StreamResult, BatchResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_batches: int = 0,
    log: Callable[[str], None] | None = None,
) -> StreamResult:
    """Runs the stream query with the job's trigger until the available data is processed (Once,
    AvailableNow), or until `should_stop()` or `max_batches` committed batches (ProcessingTime),
    then stops it between batches. `on_batch` sees each batch once it is committed, in order.
    One query at a time per checkpoint: a second one fails at once, naming the checkpoint. `log`
    receives what the run did besides its batches (a stage branch published or dropped ...)."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    with (checkpoint.parent / f".{checkpoint.name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise JobFailed(
                f"{name}: another run is processing this stream (checkpoint {checkpoint} is in use); "
                "it resumes from the checkpoint when that run ends"
            ) from exc
        return _run_locked(
            spark, job, depots, settings, name, checkpoint, on_batch, should_stop, max_batches, log
        )


def with_trigger(writer: DataStreamWriter, mode: Streaming) -> DataStreamWriter:
    if mode.trigger_mode == "Once":
        return writer.trigger(once=True)
    if mode.trigger_mode == "AvailableNow":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{int(mode.interval_s * 1000)} milliseconds")


def _run_locked(
    spark: SparkSession,
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str,
    checkpoint: Path,
    on_batch: Callable[[StreamResult, BatchResult], None] | None,
    should_stop: Callable[[], bool] | None,
    max_batches: int,
    log: Callable[[str], None] | None,
) -> StreamResult:
    mode = streaming(job)
    try:
        source = read_stream(spark, job, depots, settings)
    except (*SPARK_ERRORS, ValueError) as exc:
        raise JobFailed(
            f"{name}: stream input {stream_input(job).name!r} could not be read: {short(exc)}"
        ) from exc
    target = target_output(job, depots)
    q_target = quarantine.table_for(target) if target is not None and source.permissive else None
    done: queue.Queue[BatchResult] = queue.Queue()
    failure: list[BaseException] = []
    result = StreamResult(
        query_id="",
        checkpoint=str(checkpoint),
        trigger=mode.trigger_mode,
        quarantine_table=q_target.address.table if q_target else None,
    )
    if source.fmt != "iceberg":  # landed files the stream will not read are said, never skipped silently
        folder = Path(io.folder(stream_input(job).address, depots, settings))
        landed = landing(folder, checkpoint, stream_file_options(job, depots))
        result.notes += [f"not read: {note}" for note in landed.notes()]
    if mode.for_each_batch_mode:
        try:
            result.notes += settle_stages(spark, job, depots, checkpoint)
        except (*SPARK_ERRORS, ValueError) as exc:
            why = short(exc)
            raise JobFailed(f"{name}: an earlier run's stage branches could not be settled: {why}") from exc
    if log is not None:
        for note in result.notes:
            log(note)
    if mode.for_each_batch_mode:
        attempted = last_started(checkpoint)  # batches up to this one may have committed already
        started: list[StreamingQuery] = []
        ready = threading.Event()

        def counts() -> tuple[int, int] | None:
            ready.wait()
            return batch_metrics(started[0])

        def process(batch: DataFrame, batch_id: int) -> None:
            try:
                done.put(
                    process_batch(
                        batch,
                        batch_id,
                        job,
                        depots,
                        settings,
                        name,
                        source,
                        checkpoint,
                        q_target,
                        counts,
                        first_attempt=attempted is None or batch_id > attempted,
                    )
                )
            except BaseException as exc:  # the query fails with it; the run reports this one, not py4j's
                failure.append(exc)
                raise

        writer = observed(source.frame, source.permissive).writeStream
        writer = writer.option("checkpointLocation", str(checkpoint))
        writer = with_trigger(writer.outputMode(mode.output_mode).foreachBatch(process), mode)
        started.append(writer.start())
        ready.set()
        queries = started
        collect: Callable[[], None] = lambda: None  # noqa: E731 (batches arrive through `done`)
    else:
        queries = iceberg_sink.start(
            spark, job, depots, settings, name, source, checkpoint, q_target, with_trigger
        )
        seen: set[int] = set()
        collect = lambda: iceberg_sink.collect(spark, queries, job, checkpoint, q_target, seen, done)  # noqa: E731
    result.query_id = str(queries[0].id)
    waiting: dict[int, BatchResult] = {}
    try:
        while True:
            active = any(q.isActive for q in queries)
            collect()
            _report(spark, queries[0], job, depots, done, waiting, result, on_batch, final=not active)
            if not active:
                break
            if should_stop is not None and should_stop():
                result.stopped = "terminated"
            elif max_batches and len(result.batches) >= max_batches:
                result.stopped = f"{max_batches} micro-batches committed"
            else:
                queries[0].awaitTermination(0.2)  # returns as soon as the query ends
                continue
            for query in queries:
                _stop_between_batches(query)
            collect()
            _report(spark, queries[0], job, depots, done, waiting, result, on_batch, final=True)
            break
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
    if failure:
        raise failure[0]
    for query in queries:
        error = query.exception()
        if error is not None:
            raise JobFailed(f"{name}: the stream query failed: {str(error.desc).splitlines()[0]}")
    return result


def _stop_between_batches(query: StreamingQuery) -> None:
    """Lets a running micro-batch commit, then stops the query (a cut batch would rerun anyway)."""
    deadline = time.monotonic() + STOP_WAIT_S
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


def _report(
    spark: SparkSession,
    query: StreamingQuery,
    job: Job,
    depots: DepotMap,
    done: queue.Queue[BatchResult],
    waiting: dict[int, BatchResult],
    result: StreamResult,
    on_batch: Callable[[StreamResult, BatchResult], None] | None,
    final: bool,
) -> None:
    """Hands on batches whose checkpoint commit is recorded (their progress is posted), with offsets."""
    while not done.empty():
        batch = done.get()
        waiting[batch.batch_id] = batch
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
            batch.arrived_at = _snapshot_time(spark, job, batch.end_offset.get("snapshot_id"))
        result.batches.append(batch)
        if on_batch is not None:
            on_batch(result, batch)


def _snapshot_time(spark: SparkSession, job: Job, snapshot_id: Any) -> float | None:
    """When an upstream Iceberg snapshot was committed: the arrival time of a table stream's rows."""
    if snapshot_id is None:
        return None
    snapshot = iceberg.java_table(spark, stream_input(job).address.table).snapshot(int(snapshot_id))
    return snapshot.timestampMillis() / 1000 if snapshot is not None else None
