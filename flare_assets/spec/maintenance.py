"""Per-table maintenance settings (`outputs[].maintenance`): schedules and health thresholds.

Defaults are documented in docs/manifests.md; a table overrides any of them in its manifest.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from flare_assets.spec.base import Strict

MAINTENANCE_KINDS = ("compaction", "manifests", "expiry", "orphans")

DEFAULT_SCHEDULES = {
    "compaction": "0 2 * * *",  # daily
    "manifests": "30 2 * * 0",  # weekly
    "expiry": "0 3 * * *",  # daily
    "orphans": "0 4 * * 0",  # weekly, after expiry has released files
}


class Thresholds(Strict):
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

    fragment_ratio: int = Field(
        default=8, ge=1, description="a data file under the target file size divided by this counts as small"
    )
    max_small_files: int = Field(
        default=100, ge=1, description="compaction when the table has this many small files"
    )
    min_small_files: int = Field(
        default=12,
        ge=2,
        description="compaction when this many files are small and maxSmallFileRatio of all files are",
    )
    max_small_file_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="with minSmallFiles: the share of small files that calls for compaction",
    )
    max_delete_files: int = Field(
        default=20, ge=1, description="compaction when the table has this many delete files"
    )
    max_manifests: int = Field(
        default=100, ge=2, description="a manifest rewrite when the table has this many manifests"
    )
    max_snapshots: int = Field(
        default=100, ge=2, description="expiry when the table has more snapshots than this"
    )
    max_snapshot_age_hours: float = Field(
        default=120, gt=0, description="expiry when the oldest snapshot is older than this many hours"
    )


class Schedules(Strict):
    """A cron per kind of maintenance; `off` (or false) turns that schedule off."""

    compaction: str | None = Field(
        default=DEFAULT_SCHEDULES["compaction"],
        description="cron of rewrite_data_files, which compacts small files",
    )
    manifests: str | None = Field(
        default=DEFAULT_SCHEDULES["manifests"], description="cron of rewrite_manifests"
    )
    expiry: str | None = Field(default=DEFAULT_SCHEDULES["expiry"], description="cron of expire_snapshots")
    orphans: str | None = Field(
        default=DEFAULT_SCHEDULES["orphans"], description="cron of remove_orphan_files"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none", "")):
            return None
        if value is not None and (not isinstance(value, str) or len(value.split()) not in (5, 6)):
            raise ValueError(f"{value!r} is not a cron expression (five fields, e.g. '0 2 * * *') or off")
        return value


class TableMaintenance(Strict):
    """`outputs[].maintenance`: how the table is kept healthy.
    `schedulesRunning: true` starts the schedules with the code location (else they start stopped)."""

    schedules: Schedules = Field(
        default_factory=Schedules, description="a cron per kind of maintenance; off turns one off"
    )
    schedules_running: bool = Field(
        default=False, description="true: the schedules start running with the code location (else stopped)"
    )
    health: bool = Field(
        default=True,
        description="true: the health sensor watches the table and launches the maintenance it needs",
    )
    thresholds: Thresholds = Field(
        default_factory=Thresholds,
        description="the table figures at which the health sensor launches maintenance",
    )
    orphan_age_days: float = Field(default=3, ge=3, description="orphans older than this are removed")
    retain_last: int = Field(default=1, ge=1, description="snapshots expiry always keeps, newest first")
