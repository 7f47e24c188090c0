"""Stream micro-batches as Dagster metadata: files and rows read, rows written and quarantined,
source offsets and the latency from arrival to commit, per output."""

from __future__ import annotations

import statistics
from typing import Any

from dagster import MetadataValue

from flare_assets.defs.metadata import markdown_table, output_metadata
from flare_assets.engine.stream.runner import BatchResult, StreamResult


def _batch_row(batch: BatchResult, output: str) -> dict[str, Any]:
    latency = batch.latency_s
    return {
        "batch": batch.batch_id,
        "files": len(batch.files),
        "rows read": batch.rows_read,
        "rows written": batch.rows_written.get(output, 0),
        "quarantined": batch.rows_quarantined,
        "start offset": batch.start_offset,
        "end offset": batch.end_offset,
        "latency s": round(latency, 2) if latency is not None else "",
        "replayed": "yes" if output in batch.replayed else "",
    }


def stream_metadata(stream: StreamResult, batches: list[BatchResult], output: str) -> dict[str, Any]:
    """One output's metadata over `batches` (all of a run's, or the one a continuous run just
    committed): the last write's table metadata plus the stream's own figures."""
    meta: dict[str, Any] = {}
    written = [b for b in batches if b.job and any(o.name == output for o in b.job.outputs)]
    if written:
        last = written[-1]
        assert last.job is not None
        out = next(o for o in last.job.outputs if o.name == output)
        meta.update(output_metadata(out, last.job))
    snapshots = [b.snapshot_ids[output] for b in batches if b.snapshot_ids.get(output)]
    if snapshots and "snapshot_id" not in meta:  # the direct sink, or a replayed batch
        meta["snapshot_id"] = MetadataValue.text(str(snapshots[-1]))
    latencies = [b.latency_s for b in batches if b.latency_s is not None]
    meta.update(
        {
            "trigger": stream.trigger,
            "micro_batches": MetadataValue.int(len(batches)),
            "batch_ids": ", ".join(str(b.batch_id) for b in batches),
            "files_read": MetadataValue.int(sum(len(b.files) for b in batches)),
            "rows_read": MetadataValue.int(sum(b.rows_read for b in batches)),
            "rows_written": MetadataValue.int(sum(b.rows_written.get(output, 0) for b in batches)),
            "rows_quarantined": MetadataValue.int(sum(b.rows_quarantined for b in batches)),
            "source_offsets": MetadataValue.json(
                {"start": batches[0].start_offset, "end": batches[-1].end_offset} if batches else {}
            ),
            "checkpoint": stream.checkpoint,
            "stream_query_id": stream.query_id,
            "batches": MetadataValue.md(markdown_table([_batch_row(b, output) for b in batches])),
        }
    )
    if latencies:
        meta["latency_s"] = MetadataValue.float(round(max(latencies), 3))
        meta["latency_p50_s"] = MetadataValue.float(round(statistics.median(latencies), 3))
    if stream.quarantine_table:
        meta["quarantine_table"] = stream.quarantine_table
    if stream.notes:
        meta["run_notes"] = MetadataValue.md("\n".join(f"- {n}" for n in stream.notes))
    files = [f for b in batches for f in b.files]
    if files:
        shown = "\n".join(f"- `{f}`" for f in files[:50]) + (
            f"\n- ... {len(files) - 50} more" if len(files) > 50 else ""
        )
        meta["files"] = MetadataValue.md(shown)
    return meta
