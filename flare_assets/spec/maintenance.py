"""Per-table maintenance settings (`outputs[].maintenance`): schedules and health thresholds.

Defaults are documented in docs/manifests.md; a table overrides any of them in its manifest.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

MAINTENANCE_KINDS = ("compaction", "manifests", "expiry", "orphans")

DEFAULT_SCHEDULES = {
    "compaction": "0 2 * * *",  # daily
    "manifests": "30 2 * * 0",  # weekly
    "expiry": "0 3 * * *",  # daily
    "orphans": "0 4 * * 0",  # weekly, after expiry has released files
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Thresholds(_Model):
    """When the health sensor launches maintenance. Sources of the defaults:
    - fragmentRatio 8: Amoro's self-optimizing.fragment-ratio; a data file under target size / 8 is
      a fragment (a small file);
    - maxSmallFiles 100: AWS Glue's compaction rule, 100 small files;
    - minSmallFiles 12 with maxSmallFileRatio 0.5: Amoro's minor-optimizing trigger file count, when at
      least half the table's files are small;
    - maxManifests 100: Iceberg's commit.manifest.min-count-to-merge;
    - maxSnapshots 100 and maxSnapshotAgeHours 120: Iceberg's history.expire.max-snapshot-age-ms (5 days);
    - maxDeleteFiles 20: merge-on-read delete files worth folding into data files.
    """

    fragment_ratio: int = Field(default=8, ge=1)
    max_small_files: int = Field(default=100, ge=1)
    min_small_files: int = Field(default=12, ge=2)
    max_small_file_ratio: float = Field(default=0.5, gt=0, le=1)
    max_delete_files: int = Field(default=20, ge=1)
    max_manifests: int = Field(default=100, ge=2)
    max_snapshots: int = Field(default=100, ge=2)
    max_snapshot_age_hours: float = Field(default=120, gt=0)


class Schedules(_Model):
    """A cron per kind of maintenance; `off` (or false) turns that schedule off."""

    compaction: str | None = DEFAULT_SCHEDULES["compaction"]
    manifests: str | None = DEFAULT_SCHEDULES["manifests"]
    expiry: str | None = DEFAULT_SCHEDULES["expiry"]
    orphans: str | None = DEFAULT_SCHEDULES["orphans"]

    @field_validator("*", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none", "")):
            return None
        if value is not None and (not isinstance(value, str) or len(value.split()) not in (5, 6)):
            raise ValueError(f"{value!r} is not a cron expression (five fields, e.g. '0 2 * * *') or off")
        return value


class TableMaintenance(_Model):
    """`outputs[].maintenance`: how the table is kept healthy.
    `schedulesRunning: true` starts the schedules with the code location (else they start stopped)."""

    schedules: Schedules = Field(default_factory=Schedules)
    schedules_running: bool = False
    health: bool = True
    thresholds: Thresholds = Field(default_factory=Thresholds)
    orphan_age_days: float = Field(default=3, ge=3, description="orphans older than this are removed")
    retain_last: int = Field(default=1, ge=1)
