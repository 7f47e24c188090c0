"""A run's identity in the snapshots it commits, so a re-executed run finds its own landed write.

Every Iceberg commit of a Dagster run carries the root run id (the same for a run and all its
re-executions), the step and the partition in its snapshot summary. Before writing an output, the
runner walks the branch's history from its head, parent by parent: a snapshot with the same identity
means an earlier attempt of this very run committed these rows, so they are reported, not written
again. Only the branch's own lineage counts: a snapshot rolled back or left on another branch does
not.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from flare_assets.engine.tables import access

ROOT_RUN, RUN, STEP, PARTITION, ROOT_STARTED = (
    "flare.dagster.root-run-id",
    "flare.dagster.run-id",
    "flare.dagster.step",
    "flare.dagster.partition",
    "flare.dagster.root-run-created-ms",
)
IDENTITY = (ROOT_RUN, STEP, PARTITION)
MAX_ANCESTORS = 10_000
CLOCK_SKEW_MS = 3_600_000  # snapshot times come from the committing host's clock


def run_properties(
    root_run_id: str, run_id: str, step: str, partition: str | None, root_created_ms: int | None = None
) -> dict[str, str]:
    """The snapshot properties naming a run's write (`partition` None for unpartitioned runs).
    `root_created_ms`, when known, lets the search stop at snapshots older than the first attempt."""
    props = {ROOT_RUN: root_run_id, RUN: run_id, STEP: step}
    if partition is not None:
        props[PARTITION] = partition
    if root_created_ms is not None:
        props[ROOT_STARTED] = str(root_created_ms)
    return props


def identity(properties: dict[str, str] | None) -> dict[str, str]:
    """The keys that say which run wrote a snapshot; empty when the caller gave no run identity."""
    properties = properties or {}
    if ROOT_RUN not in properties:
        return {}
    ident = {k: properties.get(k, "") for k in IDENTITY}
    if ROOT_STARTED in properties:
        ident[ROOT_STARTED] = properties[ROOT_STARTED]
    return ident


def landed(
    spark: SparkSession, table: str, branch: str, ident: dict[str, str]
) -> tuple[int, dict[str, str]] | None:
    """The newest snapshot on `branch` committed with this identity, with its summary (None if none).
    The walk stops at snapshots older than the root run (less an hour for clock skew)."""
    if not ident or not spark.catalog.tableExists(table):
        return None
    ident = dict(ident)
    started = ident.pop(ROOT_STARTED, None)
    oldest = int(started) - CLOCK_SKEW_MS if started else None
    ice = access.java_table(spark, table)
    ice.refresh()  # another process (the earlier attempt) committed it: never trust a cached head
    ref = ice.refs().get(branch)
    snapshot = ice.snapshot(ref.snapshotId()) if ref is not None else None
    for _ in range(MAX_ANCESTORS):
        if snapshot is None or (oldest is not None and int(snapshot.timestampMillis()) < oldest):
            return None
        summary = snapshot.summary()
        if summary.containsKey(ROOT_RUN) and all(str(summary.get(k) or "") == v for k, v in ident.items()):
            return int(snapshot.snapshotId()), {str(k): str(summary.get(k)) for k in summary.keySet()}
        parent = snapshot.parentId()
        snapshot = ice.snapshot(parent) if parent is not None else None
    return None
