"""What a job run produced, for callers to report (Dagster metadata, the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flare_assets.engine.batch.assertions import AssertionResult
from flare_assets.engine.housekeeping import HousekeepingResult


@dataclass
class PartitionWritten:
    """One partition of a partitioned run: its key per dimension, its rows after the write (all of
    them written by this run, which replaced the slice) and the first of them."""

    keys: dict[str, str]
    rows: int
    preview: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OutputResult:
    name: str
    dataset: str
    target: str
    format: str
    save_mode: str
    rows_written: int
    snapshot_id: int | None = None
    branch: str = "main"
    audit_branch: str | None = None
    published: bool | None = None  # write-audit-publish: None when the output does not use it
    snapshot_tag: str | None = None
    committed_earlier: bool = False  # an earlier attempt of the same Dagster run committed the rows
    previous_snapshot_id: int | None = None
    summary: dict[str, str] = field(default_factory=dict)
    partition_spec: str = ""
    partition_evolution: list[str] = field(default_factory=list)
    schema: list[tuple[str, str]] = field(default_factory=list)
    column_tags: dict[str, list[str]] = field(default_factory=dict)
    preview: list[dict[str, Any]] = field(default_factory=list)
    checks: list[AssertionResult] = field(default_factory=list)
    housekeeping: HousekeepingResult | None = None
    seconds: float = 0.0
    partitions: list[PartitionWritten] = field(default_factory=list)  # partitioned runs: each partition

    @property
    def slice_rows(self) -> int | None:
        """Rows of the run's slice (partitioned runs), as opposed to the table's total."""
        return sum(p.rows for p in self.partitions) if self.partitions else None

    @property
    def total_rows(self) -> int | None:
        value = self.summary.get("total-records")
        return int(value) if value is not None else None

    def counter(self, key: str) -> int:
        return int(self.summary.get(key, 0))


@dataclass
class JobResult:
    outputs: list[OutputResult]
    sql: list[tuple[str, str]]
    timings: dict[str, float]
    cached: list[str] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)
    functions: dict[str, list[str]] = field(default_factory=dict)  # step -> the functions it applied
    run_number: int = 0  # the job's integer run id (1 + the last committed one)
    partition: str | None = None
    incremental: list[Any] = field(default_factory=list)  # engine.incremental.Progress per input
    skipped: str | None = None  # why nothing was written (no new data)
    archived: int = 0  # input files moved to their archive folder
    bad_records: list[Any] = field(default_factory=list)  # engine.bad_records.BadRecords per file input
