"""Stream jobs checked at load time: one stream input, a schema for file streams, outputs a
micro-batch can write exactly once. No Spark here; whether a table exists is asked of the caller."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flare_assets.spec.model import Input, Job, Output, Streaming

if TYPE_CHECKING:
    from flare_assets.spec.loader import LoadedJob

STREAM_FORMATS = ("json", "csv", "parquet", "orc")
# Formats whose malformed records Spark keeps (PERMISSIVE mode) in a corrupt-record column.
PERMISSIVE_FORMATS = ("json", "csv")

TableExists = Callable[[str], bool]

# Spark's file source skips, without a word, files older than `maxFileAge` (7 days) before the
# newest file it has read, and files in subfolders. A stream reads every file landed in its folder
# unless the manifest's options say otherwise (`maxFileAge: 7d`, `recursiveFileLookup: false`).
NO_AGE_LIMIT = "36500d"
STREAM_FILE_DEFAULTS = {"maxFileAge": NO_AGE_LIMIT, "recursiveFileLookup": "true"}


def stream_file_options(job: Job, depots: Any) -> dict[str, str]:
    """The options a file stream is read with: the stream defaults, then the depot's, then the
    input's; keys lowercased, as Spark takes them."""
    item = stream_input(job)
    depot = depots.depots[item.address.depot]
    merged: dict[str, str] = {}
    for options in (STREAM_FILE_DEFAULTS, depot.options or {}, item.options or {}):
        for key, value in options.items():
            merged[key.lower()] = str(value).lower() if isinstance(value, bool) else str(value)
    return merged


def duration_ms(text: str) -> int:
    """A Spark time string, as Spark parses `maxFileAge`: an integer and a unit (us, ms, s, m, min,
    h, d; none: milliseconds), `7d`, `12h`, `500ms`."""
    units = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
    found = re.fullmatch(r"(-?[0-9]+)([a-z]+)?", text.strip().lower())
    if found is None or (found.group(2) or "ms") not in units:
        raise ValueError(f"{text!r} is not a duration; allowed: an integer and us, ms, s, m, min, h or d")
    return int(int(found.group(1)) * units[found.group(2) or "ms"])


def is_stream_job(job: Job) -> bool:
    return job.streaming is not None or any(i.is_stream for i in job.inputs)


def streaming(job: Job) -> Streaming:
    """The job's streaming block, or Flare's default (AvailableNow) when only the input says isStream."""
    return job.streaming or Streaming()


def stream_input(job: Job) -> Input:
    return next(i for i in job.inputs if i.is_stream)


def target_output(job: Job, depots: Any) -> Output | None:
    """The table a file stream without a schema takes its schema from: the job's first Iceberg output."""
    return next((o for o in job.outputs if depots.is_iceberg(o.address)), None)


def check_stream(lj: LoadedJob, depots: Any, table_exists: TableExists | None) -> list[str]:
    """A stream job reads one stream input, writes each micro-batch as one commit per output, and
    knows the schema of the files it streams."""
    job = lj.dag_job.job
    if not is_stream_job(job):
        return []
    base = lj.where()
    streams = [i for i, x in enumerate(job.inputs) if x.is_stream]
    if not streams:
        return [f"{base}.streaming: a stream job reads one input with isStream: true; none does"]
    if len(streams) > 1:
        where = ", ".join(f"inputs[{i}]" for i in streams)
        return [
            f"{base}.inputs[{streams[1]}].isStream: a stream job reads one stream input; {where} all set it"
        ]
    problems = _batch_only_keys(job, base, streams[0])
    mode = streaming(job)
    if not mode.for_each_batch_mode:
        problems += _direct_sink(job, mode, depots, base)
    item = job.inputs[streams[0]]
    if depots is not None and not depots.is_iceberg(item.address):
        problems += _file_stream(job, depots, table_exists, f"{base}.inputs[{streams[0]}]")
    return problems


def _batch_only_keys(job: Job, base: str, index: int) -> list[str]:
    """Keys a stream job cannot honour: the checkpoint says what is new, a batch is one commit."""
    problems = [
        f"{base}.outputs[{i}].options.{key}: not for stream jobs (each micro-batch is one commit per output)"
        for i, o in enumerate(job.outputs)
        for key, used in (
            ("extraOptions.commitBy", o.options.commit_by),
            ("writeAuditPublish", o.options.write_audit_publish),
        )
        if used
    ]
    if job.partitions is not None:
        problems.append(f"{base}.partitions: not for stream jobs (the checkpoint says what is new)")
    item = job.inputs[index]
    if item.incremental is not None or item.incremental_read is not None:
        problems.append(
            f"{base}.inputs[{index}].incremental: not for stream inputs (the checkpoint says what is new)"
        )
    return problems


def _file_stream(job: Job, depots: Any, table_exists: TableExists | None, where: str) -> list[str]:
    """A streamed file format, durations that parse, and a schema: given, or the target table's."""
    item = stream_input(job)
    depot = depots.depots[item.address.depot]
    fmt = (item.format or depot.format or "parquet").lower()
    problems = []
    if fmt not in STREAM_FORMATS:
        problems.append(f"{where}.format: {fmt!r} cannot be streamed; allowed: {', '.join(STREAM_FORMATS)}")
    for key, value in (item.options or {}).items():
        if key.lower() == "maxfileage":
            try:
                duration_ms(str(value))
            except ValueError as exc:
                problems.append(f"{where}.options.{key}: {exc}")
    if item.schema_string or item.schema_path:
        return problems
    target = target_output(job, depots)
    if target is None or table_exists is None or not table_exists(target.address.table):
        table = f"the target table {target.address.table}, which does not exist yet" if target else "(none)"
        problems.append(
            f"{where}: a file stream needs a schema; give schemaString or schemaPath "
            f"(or write to an existing table to take its schema; target: {table})"
        )
    return problems


def _direct_sink(job: Job, mode: Streaming, depots: Any, base: str) -> list[str]:
    """forEachBatchMode: false streams the steps' result straight into one Iceberg table."""
    if len(job.outputs) != 1:
        return [
            f"{base}.streaming.forEachBatchMode: false writes one output; this job has {len(job.outputs)}"
        ]
    output = job.outputs[0]
    problems = []
    if depots is not None and not depots.is_iceberg(output.address):
        problems.append(f"{base}.streaming.forEachBatchMode: false writes an Iceberg table; allowed: true")
    wanted = "overwrite" if mode.output_mode == "complete" else "append"
    if output.options.write_mode != wanted:
        problems.append(
            f"{base}.outputs[0].options.saveMode: outputMode {mode.output_mode} with forEachBatchMode: false "
            f"writes with saveMode {wanted}; allowed: {wanted} (or set forEachBatchMode: true)"
        )
    if mode.output_mode == "update":
        problems.append(
            f"{base}.streaming.outputMode: update is not an Iceberg sink mode; allowed: append, complete"
        )
    return problems
