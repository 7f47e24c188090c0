"""What a stream run produced: its committed micro-batches, for callers to report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flare_assets.engine.batch.results import JobResult


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
    notes: list[str] = field(default_factory=list)  # what the run did besides its batches
