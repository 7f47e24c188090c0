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

from flare_assets.engine import iceberg

ROOT_RUN, RUN, STEP, PARTITION = (
    "flare.dagster.root-run-id",
    "flare.dagster.run-id",
    "flare.dagster.step",
    "flare.dagster.partition",
)
IDENTITY = (ROOT_RUN, STEP, PARTITION)
MAX_ANCESTORS = 10_000


def run_properties(root_run_id: str, run_id: str, step: str, partition: str | None) -> dict[str, str]:
    """The snapshot properties naming a run's write (`partition` None for unpartitioned runs)."""
    props = {ROOT_RUN: root_run_id, RUN: run_id, STEP: step}
    if partition is not None:
        props[PARTITION] = partition
    return props


def identity(properties: dict[str, str] | None) -> dict[str, str]:
    """The keys that say which run wrote a snapshot; empty when the caller gave no run identity."""
    properties = properties or {}
    if ROOT_RUN not in properties:
        return {}
    return {k: properties.get(k, "") for k in IDENTITY}


def landed(
    spark: SparkSession, table: str, branch: str, ident: dict[str, str]
) -> tuple[int, dict[str, str]] | None:
    """The newest snapshot on `branch` committed with this identity, with its summary (None if none)."""
    if not ident or not spark.catalog.tableExists(table):
        return None
    ice = iceberg._java_table(spark, table)
    ice.refresh()  # another process (the earlier attempt) committed it: never trust a cached head
    ref = ice.refs().get(branch)
    snapshot = ice.snapshot(ref.snapshotId()) if ref is not None else None
    for _ in range(MAX_ANCESTORS):
        if snapshot is None:
            return None
        summary = snapshot.summary()
        if summary.containsKey(ROOT_RUN) and all(str(summary.get(k) or "") == v for k, v in ident.items()):
            return int(snapshot.snapshotId()), {str(k): str(summary.get(k)) for k in summary.keySet()}
        parent = snapshot.parentId()
        snapshot = ice.snapshot(parent) if parent is not None else None
    return None
