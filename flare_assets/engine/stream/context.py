"""One run of a stream job, and what its micro-batches share, each as one value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flare_assets.engine.batch.context import RunContext
from flare_assets.engine.stream.results import BatchResult, StreamResult
from flare_assets.engine.stream.source import StreamSource
from flare_assets.spec.model import Output


@dataclass(frozen=True)
class StreamRun:
    """A stream run: the job's run context (session, job, depots, settings, label), its checkpoint,
    and what the run answers to: each committed batch (`on_batch`), a request to stop between
    batches (`should_stop`, `max_batches`), and a log for what it did besides its batches."""

    ctx: RunContext
    checkpoint: Path
    on_batch: Callable[[StreamResult, BatchResult], None] | None = None
    should_stop: Callable[[], bool] | None = None
    max_batches: int = 0
    log: Callable[[str], None] | None = None


@dataclass(frozen=True)
class StreamQuery:
    """What every micro-batch of a run shares: the run, the source it reads, the quarantine table
    malformed records go to, and the counts the observed source takes of the running batch."""

    run: StreamRun
    source: StreamSource
    q_target: Output | None
    metrics: Callable[[], tuple[int, int] | None] | None = None

    @property
    def ctx(self) -> RunContext:
        return self.run.ctx

    @property
    def checkpoint(self) -> Path:
        return self.run.checkpoint
