"""One micro-batch of a forEachBatchMode stream: malformed records to quarantine, then the job's
steps and writes, each Iceberg commit tagged with the stream and batch ids and skipped when an
earlier attempt of the same batch already made it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from flare_assets.checkpoints import local_path, replayed_batch
from flare_assets.depots import DepotMap
from flare_assets.engine import iceberg, quarantine
from flare_assets.engine.context import RunContext
from flare_assets.engine.runner import run_job
from flare_assets.engine.stream_results import BatchResult
from flare_assets.engine.stream_source import FILE_PATH, FILE_TIME, StreamSource
from flare_assets.settings import Settings
from flare_assets.spec.model import Job, Output
from flare_assets.spec.streams import stream_input

STREAM_ID, STREAM_BATCH = iceberg.STREAM_ID, iceberg.STREAM_BATCH


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


def process_batch(
    batch: DataFrame,
    batch_id: int,
    job: Job,
    depots: DepotMap,
    settings: Settings,
    name: str,
    source: StreamSource,
    checkpoint: Path,
    q_target: Output | None,
) -> BatchResult:
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
        result.files = sorted(local_path(f) for f in row.get("files") or [])
        result.arrived_at = row.get("arrived")
        good = frame
        if source.permissive:
            result.rows_quarantined = int(row["bad"])
            good = frame.filter(F.col(quarantine.CORRUPT).isNull()).drop(quarantine.CORRUPT)
            if result.rows_quarantined and q_target is not None:
                if iceberg.find_snapshot(spark, q_target.address.table, props, "main", STREAM_BATCH) is None:
                    assert source.schema is not None
                    rejected = quarantine.reasons(
                        frame.filter(F.col(quarantine.CORRUPT).isNotNull()), source.fmt, source.schema
                    )
                    quarantine.write(spark, rejected, q_target, name, batch_id, F.col(FILE_PATH), props)
        if source.fmt != "iceberg":
            good = good.drop(FILE_PATH, FILE_TIME)
        for output in job.outputs:
            found = depots.is_iceberg(output.address) and iceberg.find_snapshot(
                spark, output.address.table, props, output.options.branch or "main", STREAM_BATCH
            )
            if found:  # an earlier attempt of this batch committed it
                result.replayed.append(output.name)
                result.snapshot_ids[output.name] = found[0]
        todo = {o.name for o in job.outputs} - set(result.replayed)
        if todo and result.rows_read > result.rows_quarantined:
            ctx = RunContext(
                spark,
                job,
                depots,
                settings,
                name=name,
                only=frozenset(todo),
                inputs_read={item.name: good},
                snapshot_properties=props,
            )
            result.job = run_job(ctx)
            for out in result.job.outputs:
                result.rows_written[out.name] = out.rows_written
                result.snapshot_ids[out.name] = out.snapshot_id
    finally:
        frame.unpersist()
    result.committed_at = time.time()
    result.seconds = time.perf_counter() - t0
    return result
