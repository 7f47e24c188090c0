"""One run of one job, as a single value the engine's phases pass along instead of long lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from flare_assets.depots import DepotMap
from flare_assets.engine.batch.partitions import PartitionSlice
from flare_assets.engine.batch.state import StateRequest
from flare_assets.settings import Settings
from flare_assets.spec.model import Job, Output


@dataclass(frozen=True)
class RunContext:
    """The session, the job and where it reads and writes, and what this run of it is: its label
    (`workflow/job`), the Dagster run it belongs to, its partition slice and replay request, the
    outputs it writes (`only`, default all), inputs a stream already read, and the properties every
    Iceberg commit of the run carries."""

    spark: SparkSession
    job: Job
    depots: DepotMap
    settings: Settings
    name: str = "job"
    run_id: str | None = None
    partition: PartitionSlice | None = None
    request: StateRequest = field(default_factory=StateRequest)
    only: frozenset[str] | None = None
    inputs_read: Mapping[str, DataFrame] = field(default_factory=dict)
    snapshot_properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def feed(self) -> str:
        """The workflow part of the label: housekeeping expressions see it as `feed`."""
        return self.name.split("/")[0]

    def selected(self) -> list[Output]:
        """The outputs this run writes, in manifest order."""
        return [o for o in self.job.outputs if self.only is None or o.name in self.only]
