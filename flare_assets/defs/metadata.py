"""Engine results as Dagster metadata: numbers the UI can plot, tables it can show."""

from __future__ import annotations

import re
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    TableColumn,
    TableSchema,
)

from flare_assets.engine.batch.assertions import AssertionResult
from flare_assets.engine.batch.results import JobResult, OutputResult, PartitionWritten
from flare_assets.engine.housekeeping import HousekeepingResult

_TAG_KEY = re.compile(r"[^A-Za-z0-9_.\-/]")


def dagster_tags(tags: list[str]) -> dict[str, str]:
    """Flare tags (`tier.gold`, `retail`) as Dagster tag keys with empty values, as kinds are."""
    return {_TAG_KEY.sub("_", t)[:63]: "" for t in tags if t}


def column_schema(columns: list[tuple[str, str]], tags: dict[str, list[str]] | None = None) -> TableSchema:
    tags = tags or {}
    return TableSchema(
        columns=[TableColumn(name=n, type=t, tags=dagster_tags(tags.get(n, []))) for n, t in columns]
    )


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def output_metadata(out: OutputResult, job: JobResult) -> dict[str, Any]:
    """An output's materialization metadata: what was written and how, the job's SQL and plans, the
    row counts Dagster charts, and for Iceberg the commit."""
    meta: dict[str, Any] = {
        "dataset": out.dataset,
        "target": out.target,
        "format": out.format,
        "write_mode": out.save_mode,
        "rows_written": MetadataValue.int(out.rows_written),
        "dagster/column_schema": column_schema(out.schema, out.column_tags),
        "duration_s": MetadataValue.float(round(out.seconds, 3)),
        "job_duration_s": MetadataValue.float(round(job.timings.get("total_s", 0.0), 3)),
        "sql": MetadataValue.md(
            "\n\n".join(f"**{n}**\n```sql\n{q}\n```" for n, q in job.sql) or "(no steps)"
        ),
        "preview": MetadataValue.md(markdown_table(out.preview)),
        **_job_steps(job),
        **_row_counts(out),
    }
    if out.housekeeping is not None:
        meta.update(housekeeping_metadata(out.housekeeping))
    if out.snapshot_id is not None:
        meta.update(_commit_metadata(out))
    return meta


def _job_steps(job: JobResult) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if job.functions:
        meta["functions"] = MetadataValue.md(
            "\n".join(f"- **{step}**: {', '.join(names)}" for step, names in job.functions.items())
        )
    if job.cached:
        meta["cached_steps"] = ", ".join(job.cached)
    if job.plans:
        meta["plans"] = MetadataValue.md("\n\n".join(f"**{n}**\n```\n{p}\n```" for n, p in job.plans.items()))
    return meta


def _row_counts(out: OutputResult) -> dict[str, Any]:
    """A partitioned run: its slice's rows, and which partitions had none; else the table's rows."""
    meta: dict[str, Any] = {}
    if out.slice_rows is not None:
        meta["dagster/row_count"] = MetadataValue.int(out.slice_rows)
        empty = [partition_label(p) for p in out.partitions if not p.rows]
        if empty:
            meta["empty_partitions"] = MetadataValue.text(", ".join(empty))
        if out.total_rows is not None:
            meta["table_rows"] = MetadataValue.int(out.total_rows)
    elif out.total_rows is not None:
        meta["dagster/row_count"] = MetadataValue.int(out.total_rows)
    return meta


SUMMARY_COUNTERS = (
    "added-records",
    "deleted-records",
    "added-data-files",
    "deleted-data-files",
    "total-data-files",
)


def _commit_metadata(out: OutputResult) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "snapshot_id": MetadataValue.text(str(out.snapshot_id)),
        "previous_snapshot_id": MetadataValue.text(str(out.previous_snapshot_id or "")),
        "branch": out.branch,
    }
    if out.committed_earlier:
        meta["committed_by_earlier_attempt"] = MetadataValue.text(
            f"{out.counter('added-records')} rows committed by an earlier attempt of this run as "
            f"snapshot {out.snapshot_id}; not written again"
        )
    if out.snapshot_tag:
        meta["snapshot_tag"] = out.snapshot_tag
    if out.published is not None:
        meta["published"] = MetadataValue.bool(out.published)
        meta["audit_branch"] = out.audit_branch or ""
    meta["dagster/table_name"] = out.target
    meta["partition_spec"] = out.partition_spec
    if out.partition_evolution:
        meta["partition_evolution"] = MetadataValue.md("\n".join(f"- `{d}`" for d in out.partition_evolution))
    meta.update({key.replace("-", "_"): MetadataValue.int(out.counter(key)) for key in SUMMARY_COUNTERS})
    return meta


def partition_label(part: PartitionWritten) -> str:
    return "|".join(part.keys.values())


def partition_metadata(part: PartitionWritten) -> dict[str, Any]:
    """What one partition of a run wrote; shown on that partition's materialization."""
    return {
        "rows_written": MetadataValue.int(part.rows),
        "dagster/row_count": MetadataValue.int(part.rows),
        "preview": MetadataValue.md(markdown_table(part.preview)),
        "partition_empty": MetadataValue.bool(not part.rows),
    }


def run_metadata(job: JobResult) -> dict[str, Any]:
    """The job's integer run id, the partition it covered and what each incremental input read."""
    meta: dict[str, Any] = {"flare_run_id": MetadataValue.int(job.run_number)}
    if job.partition:
        meta["partition_slice"] = job.partition
    if job.incremental:
        meta["incremental"] = MetadataValue.md(
            "\n".join(f"- **{p.input}** ({p.kind}): {p.detail}" for p in job.incremental)
        )
        state = {k: v for p in job.incremental for k, v in p.properties.items()}
        if state:
            meta["incremental_state"] = MetadataValue.json(state)
    if job.archived:
        meta["files_archived"] = MetadataValue.int(job.archived)
    if job.bad_records:
        meta["malformed_records"] = MetadataValue.int(sum(b.count for b in job.bad_records))
        meta["quarantined_records"] = MetadataValue.int(
            sum(b.count for b in job.bad_records if b.table is not None)
        )
        tables = sorted({b.table for b in job.bad_records if b.table})
        if tables:
            meta["quarantine_table"] = ", ".join(tables)
            meta["malformed_examples"] = MetadataValue.md(
                "\n".join(f"- **{b.input}**: {e}" for b in job.bad_records for e in b.examples)
            )
    return meta


def skipped_metadata(job: JobResult) -> dict[str, Any]:
    return {**run_metadata(job), "skipped": job.skipped or "", "rows_written": MetadataValue.int(0)}


def check_result(key: AssetKey, check: AssertionResult) -> AssetCheckResult:
    """An assertion's outcome with its measured values, so the UI shows what was measured."""
    meta: dict[str, Any] = {m: MetadataValue.float(v) for m, v in check.measured.items() if v is not None}
    meta.update({m: MetadataValue.text("null") for m, v in check.measured.items() if v is None})
    if check.failed_tests:
        meta["failed_tests"] = MetadataValue.text("; ".join(check.failed_tests))
    if check.error:
        meta["error"] = MetadataValue.text(check.error)
    return AssetCheckResult(
        asset_key=key,
        check_name=check.name,
        passed=check.passed,
        severity=AssetCheckSeverity.ERROR if check.blocking else AssetCheckSeverity.WARN,
        metadata=meta,
    )


def _listing(items: list[str], limit: int = 50) -> str:
    shown = "\n".join(f"- `{i}`" for i in items[:limit])
    return shown + (f"\n- ... {len(items) - limit} more" if len(items) > limit else "")


def housekeeping_metadata(result: HousekeepingResult) -> dict[str, Any]:
    """Numbers the UI plots over time (partitions and files before and after), and what moved."""
    meta: dict[str, Any] = {
        "housekeeping_mode": result.mode,
        "housekeeping_partitions_before": MetadataValue.int(result.partitions_before),
        "housekeeping_partitions_after": MetadataValue.int(result.partitions_after),
        "housekeeping_files_before": MetadataValue.int(result.files_before),
        "housekeeping_files_after": MetadataValue.int(result.files_after),
        "housekeeping_partitions_deleted": MetadataValue.int(len(result.deleted)),
        "housekeeping_partitions_archived": MetadataValue.int(len(result.archived)),
        "housekeeping_partitions_compacted": MetadataValue.int(len(result.compacted)),
        "housekeeping_s": MetadataValue.float(round(result.seconds, 3)),
    }
    done = [f"deleted {p}" for p in result.deleted]
    done += [f"archived {src} -> {dst}" for src, dst in result.archived.items()]
    done += [f"compacted {p}" for p in result.compacted]
    done += [f"repaired {p}" for p in result.repaired]
    if done:
        meta["housekeeping"] = MetadataValue.md(_listing(done))
    if result.snapshot_id is not None:
        meta["housekeeping_snapshot_id"] = MetadataValue.text(str(result.snapshot_id))
    return meta
