"""Stream jobs on Structured Streaming: the stream input read from a landing folder or an Iceberg
table, the job's steps and writes applied to each micro-batch, progress kept in a checkpoint.

Exactly-once: the checkpoint says which batches are done; a batch that was cut short runs again on
restart with the same data and id. Every Iceberg commit of a batch carries the stream's id and the
batch id in its snapshot summary, so a rerun batch skips the outputs it had already committed
(forEachBatchMode); Iceberg's own streaming sink does the same by query and epoch id (direct mode).
"""

from __future__ import annotations

import fcntl
import json
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import StringType, StructField, StructType, _parse_datatype_string

from flare_assets.depots import DepotMap
from flare_assets.engine import iceberg, io, quarantine
from flare_assets.engine.errors import SPARK_ERRORS, JobFailed, short
from flare_assets.engine.results import JobResult
from flare_assets.engine.runner import run_job
from flare_assets.settings import Settings
from flare_assets.spec.model import Job
from flare_assets.spec.streams import PERMISSIVE_FORMATS, stream_input, streaming, target_output

FILE_PATH, FILE_TIME = "_flare_source_file", "_flare_file_time"
STREAM_ID, STREAM_BATCH = "flare.stream-id", "flare.stream-batch"
STOP_WAIT_S = 60.0


@dataclass
class BatchResult:
    """One committed micro-batch."""

    batch_id: int
    rows_read: int = 0
    rows_quarantined: int = 0
    files: list[str] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)
    snapshot_ids: dict[str, int | None] = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)  # outputs an earlier attempt had committed
    arrived_at: float | None = None  # earliest arrival (file mtime or upstream commit), epoch seconds
    committed_at: float = 0.0
    start_offset: Any = None
    end_offset: Any = None
    seconds: float = 0.0
    job: JobResult | None = None

    @property
    def latency_s(self) -> float | None:
        """From the earliest record's arrival to this batch's commit."""
        return None if self.arrived_at is None else max(0.0, self.committed_at - self.arrived_at)


@dataclass
class StreamResult:
    query_id: str
    checkpoint: str
    trigger: str
    batches: list[BatchResult] = field(default_factory=list)
    stopped: str = "all available data processed"
    quarantine_table: str | None = None


@dataclass
class _Source:
    frame: DataFrame
    fmt: str  # json, csv, parquet, orc or iceberg
    schema: StructType | None = None

    @property
    def permissive(self) -> bool:
        return self.fmt in PERMISSIVE_FORMATS


def read_stream(spark: SparkSession, job: Job, depots: DepotMap, settings: Settings) -> _Source:
    """The stream input as a streaming DataFrame. Files: the given schema (or the target table's),
    malformed records kept in a corrupt-record column, each row's file and arrival time added."""
    item = stream_input(job)
    address = item.address
    options = io._options(item.options)
    if io.is_iceberg(address, depots):
        return _Source(spark.readStream.format("iceberg").options(**options).load(address.table), "iceberg")
    depot = depots.depots[address.depot]
    fmt = (item.format or depot.format or "parquet").lower()
    schema = _schema(spark, job, depots)
    reader = spark.readStream.format(fmt).options(**io.FILE_READ_DEFAULTS.get(fmt, {}))
    reader = reader.options(**io._options(depot.options)).options(**options)
    if fmt in PERMISSIVE_FORMATS:
        schema = StructType([*schema.fields, StructField(quarantine.CORRUPT, StringType())])
        reader = reader.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", quarantine.CORRUPT)
    landing = io.folder(address, depots, settings)
    if "://" not in landing:
        Path(landing).mkdir(parents=True, exist_ok=True)  # Spark refuses to watch a missing folder
    frame = reader.schema(schema).load(landing)
    frame = frame.select(
        "*",
        F.col("_metadata.file_path").alias(FILE_PATH),
        F.col("_metadata.file_modification_time").alias(FILE_TIME),
    )
    return _Source(frame, fmt, schema)


def _schema(spark: SparkSession, job: Job, depots: DepotMap) -> StructType:
    given = io.read_schema(stream_input(job))
    if isinstance(given, StructType):
        return given
    if given is not None:
        parsed = _parse_datatype_string(given)
        return parsed if isinstance(parsed, StructType) else StructType([])
    target = target_output(job, depots)
    assert target is not None  # checked when the manifest was loaded
    return spark.table(target.address.table).schema


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
) -> StreamResult:
    """Runs the stream query with the job's trigger until the available data is processed (Once,
    AvailableNow), or until `should_stop()` or `max_batches` committed batches (ProcessingTime),
    then stops it between batches. `on_batch` sees each batch once it is committed, in order.
    One query at a time per checkpoint: a second one fails at once, naming the checkpoint."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    with (checkpoint.parent / f".{checkpoint.name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise JobFailed(
                f"{name}: another run is processing this stream (checkpoint {checkpoint} is in use); "
                "it resumes from the checkpoint when that run ends"
            ) from exc
        return _run_locked(spark, job, depots, settings, name, checkpoint, on_batch, should_stop, max_batches)


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
) -> StreamResult:
    mode = streaming(job)
    try:
        source = read_stream(spark, job, depots, settings)
    except (*SPARK_ERRORS, ValueError) as exc:
        raise JobFailed(
            f"{name}: stream input {stream_input(job).name!r} could not be read: {short(exc)}"
        ) from exc
    target = target_output(job, depots)
    done: queue.Queue[BatchResult] = queue.Queue()
    failure: list[BaseException] = []
    q_target = quarantine.table_for(target) if target is not None and source.permissive else None

    def process(batch: DataFrame, batch_id: int) -> None:
        try:
            done.put(_micro_batch(batch, batch_id, job, depots, settings, name, source, checkpoint, q_target))
        except BaseException as exc:  # the query fails with it; the run reports this one, not py4j's
            failure.append(exc)
            raise

    writer = (
        source.frame.writeStream.option("checkpointLocation", str(checkpoint))
        .outputMode(mode.output_mode)
        .foreachBatch(process)
    )
    if mode.trigger_mode == "Once":
        writer = writer.trigger(once=True)
    elif mode.trigger_mode == "AvailableNow":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{int(mode.interval_s * 1000)} milliseconds")
    result = StreamResult(
        query_id="",
        checkpoint=str(checkpoint),
        trigger=mode.trigger_mode,
        quarantine_table=q_target.address.table if q_target else None,
    )
    query = writer.start()
    result.query_id = str(query.id)
    waiting: dict[int, BatchResult] = {}
    try:
        while True:
            active = query.isActive
            _report(spark, query, job, depots, done, waiting, result, on_batch, final=not active)
            if not active:
                break
            if should_stop is not None and should_stop():
                result.stopped = "terminated"
            elif max_batches and len(result.batches) >= max_batches:
                result.stopped = f"{max_batches} micro-batches committed"
            else:
                time.sleep(0.2)
                continue
            _stop_between_batches(query)
            _report(spark, query, job, depots, done, waiting, result, on_batch, final=True)
            break
    finally:
        if query.isActive:
            query.stop()
    if failure:
        raise failure[0]
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
            batch.arrived_at = _snapshot_time(spark, job, depots, batch.end_offset.get("snapshot_id"))
        result.batches.append(batch)
        if on_batch is not None:
            on_batch(result, batch)


def _snapshot_time(spark: SparkSession, job: Job, depots: DepotMap, snapshot_id: Any) -> float | None:
    """When an upstream Iceberg snapshot was committed: the arrival time of a table stream's rows."""
    if snapshot_id is None:
        return None
    snapshot = iceberg._java_table(spark, stream_input(job).address.table).snapshot(int(snapshot_id))
    return snapshot.timestampMillis() / 1000 if snapshot is not None else None


def stream_id(checkpoint: Path) -> str:
    """The query id Spark keeps in the checkpoint: the same across restarts, new with a new checkpoint."""
    return str(json.loads((checkpoint / "metadata").read_text())["id"])


def _micro_batch(
    batch: DataFrame,
    batch_id: int,
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str,
    source: _Source,
    checkpoint: Path,
    q_target: Any,
) -> BatchResult:
    """One micro-batch: malformed records to quarantine, then the job's steps and writes, each commit
    tagged with the stream and batch ids and skipped when an earlier attempt already made it."""
    t0 = time.perf_counter()
    spark = batch.sparkSession
    item = stream_input(job)
    props = {STREAM_ID: stream_id(checkpoint), STREAM_BATCH: str(batch_id)}
    result = BatchResult(batch_id=batch_id)
    frame = batch.persist()
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
        result.files = sorted(row.get("files") or [])
        result.arrived_at = row.get("arrived")
        good = frame
        if source.permissive:
            result.rows_quarantined = int(row["bad"])
            good = frame.filter(F.col(quarantine.CORRUPT).isNull()).drop(quarantine.CORRUPT)
            if result.rows_quarantined and q_target is not None:
                if iceberg.find_snapshot(spark, q_target.address.table, props) is None:
                    assert source.schema is not None
                    rejected = quarantine.reasons(
                        frame.filter(F.col(quarantine.CORRUPT).isNotNull()), source.fmt, source.schema
                    )
                    quarantine.write(spark, rejected, q_target, name, batch_id, F.col(FILE_PATH), props)
        if source.fmt != "iceberg":
            good = good.drop(FILE_PATH, FILE_TIME)
        iceberg_outputs = [o for o in job.outputs if io.is_iceberg(o.address, depots)]
        result.replayed = [
            o.name
            for o in iceberg_outputs
            if iceberg.find_snapshot(spark, o.address.table, props) is not None
        ]
        todo = {o.name for o in job.outputs} - set(result.replayed)
        if todo and result.rows_read > result.rows_quarantined:
            result.job = run_job(
                spark,
                job,
                depots,
                settings,
                name=name,
                only=todo,
                inputs_read={item.name: good},
                snapshot_properties=props,
            )
            for out in result.job.outputs:
                result.rows_written[out.name] = out.rows_written
                result.snapshot_ids[out.name] = out.snapshot_id
    finally:
        frame.unpersist()
    result.committed_at = time.time()
    result.seconds = time.perf_counter() - t0
    return result
