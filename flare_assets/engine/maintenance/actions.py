"""Flare actions run through Iceberg's own Spark procedures (rewrite_data_files, rewrite_manifests,
expire_snapshots, remove_orphan_files) and DELETE FROM. No Dagster here.

Every action is checked against the table before any of them runs: the table exists, an orphan
cutoff is not under the floor, named snapshots are not heads of branches or tags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from flare_assets.depots import DepotMap
from flare_assets.engine.errors import SPARK_ERRORS, JobFailed, short
from flare_assets.engine.maintenance.health import TableHealth
from flare_assets.engine.tables import io
from flare_assets.engine.tables.access import java_table, literal, procedure_call
from flare_assets.engine.tables.commits import with_retries
from flare_assets.settings import Settings
from flare_assets.spec.actions import (
    ORPHAN_FLOOR_DAYS,
    Action,
    ExpireSnapshotsOptions,
    RemoveOrphansOptions,
    RewriteDatasetOptions,
    RewriteManifestOptions,
)
from flare_assets.spec.maintenance import TableMaintenance
from flare_assets.spec.model import Job

DAY_MS = 86_400_000

# Compaction beside writers: commit file groups as they finish, so a conflicting writer's commit costs
# one group, not the whole rewrite (Iceberg retries the commit; the engine reruns the call on conflicts).
SAFE_REWRITE = {"partial-progress.enabled": "true", "partial-progress.max-commits": "10"}


@dataclass
class ActionResult:
    """What one action did: the procedure's counters, the statement, and for orphans the files."""

    action: str
    table: str
    statement: str
    counters: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    rows_matched: int | None = None
    rows_total: int | None = None
    dry_run: bool = False
    seconds: float = 0.0


def timestamp_literal(millis: int) -> str:
    """Spark 3.5 takes a TIMESTAMP literal as a procedure argument, not current_timestamp()."""
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}'"


def _map(values: dict[str, str]) -> str | None:
    if not values:
        return None
    return "map(" + ", ".join(f"{literal(k)}, {literal(v)}" for k, v in values.items()) + ")"


def check(spark: SparkSession, table: str, action: Action, now_ms: int | None = None) -> None:
    """Refuses, with the reason, what must not run: a missing table, an orphan cutoff under the floor
    without force, expiring the head of a branch or tag."""
    if not spark.catalog.tableExists(table):
        raise ValueError(f"{action.name}: table {table} does not exist")
    now_ms = now_ms or int(time.time() * 1000)
    opts = action.options
    if isinstance(opts, RemoveOrphansOptions):
        cutoff = opts.cutoff_millis
        if cutoff is not None and cutoff > now_ms - ORPHAN_FLOOR_DAYS * DAY_MS and not opts.force:
            raise ValueError(
                f"remove_orphans on {table}: olderThan {timestamp_literal(cutoff)} is less than "
                f"{ORPHAN_FLOOR_DAYS} days ago; files of writes in progress would look orphaned. "
                "Give an older cutoff, or force: true"
            )
    if isinstance(opts, ExpireSnapshotsOptions) and opts.snapshot_ids:
        refs = java_table(spark, table).refs()
        heads = {int(refs.get(n).snapshotId()): str(n) for n in refs.keySet()}
        held = [f"{sid} (head of {heads[sid]})" for sid in opts.snapshot_ids if sid in heads]
        if held:
            raise ValueError(
                f"expire_snapshots on {table}: {', '.join(held)}; heads of branches and tags are "
                "never expired"
            )


def statement(table: str, action: Action, input_name: str, now_ms: int | None = None) -> str:
    """The SQL that runs the action: an Iceberg procedure, or a DELETE."""
    opts = action.options
    if isinstance(opts, RewriteManifestOptions):
        caching = None if opts.use_caching is None else str(opts.use_caching).lower()
        return procedure_call(table, "rewrite_manifests", {"use_caching": caching})
    if isinstance(opts, RewriteDatasetOptions):
        return procedure_call(table, "rewrite_data_files", _rewrite_args(opts))
    if isinstance(opts, ExpireSnapshotsOptions):
        return procedure_call(table, "expire_snapshots", _expire_args(opts))
    if isinstance(opts, RemoveOrphansOptions):
        return procedure_call(table, "remove_orphan_files", _orphan_args(opts, now_ms))
    where = f" WHERE {action.delete_where}" if action.delete_where and not action.all else ""
    return f"DELETE FROM {table} AS {input_name}{where}"


def _rewrite_args(opts: RewriteDatasetOptions) -> dict[str, str | None]:
    return {
        "strategy": literal(opts.strategy),
        "sort_order": literal(opts.sort_order) if opts.sort_order else None,
        "options": _map({**SAFE_REWRITE, **opts.properties}),
        "where": literal(opts.where) if opts.where else None,
    }


def _expire_args(opts: ExpireSnapshotsOptions) -> dict[str, str | None]:
    cutoff = opts.cutoff_millis
    ids = ", ".join(str(i) for i in opts.snapshot_ids or [])
    return {
        "older_than": timestamp_literal(cutoff) if cutoff is not None else None,
        "retain_last": str(opts.retain_last) if opts.retain_last else None,
        "snapshot_ids": f"array({ids})" if ids else None,
        "max_concurrent_deletes": _positive(opts.max_concurrent_deletes),
        "stream_results": None
        if opts.stream_delete_results is None
        else str(opts.stream_delete_results).lower(),
    }


def _orphan_args(opts: RemoveOrphansOptions, now_ms: int | None) -> dict[str, str | None]:
    cutoff = opts.cutoff_millis or (now_ms or int(time.time() * 1000)) - ORPHAN_FLOOR_DAYS * DAY_MS
    return {
        "older_than": timestamp_literal(cutoff),
        "location": literal(opts.location) if opts.location else None,
        "dry_run": str(opts.dry_run).lower(),
        "max_concurrent_deletes": _positive(opts.max_concurrent_deletes),
    }


def _positive(value: int | None) -> str | None:
    return str(value) if value else None


def run_action(
    spark: SparkSession,
    table: str,
    action: Action,
    input_name: str | None = None,
    dry_run: bool = False,
    now_ms: int | None = None,
) -> ActionResult:
    """Runs one checked action. delete_from_dataset counts the matching rows first (and stops there
    with dry_run); the other inputs of the job are views its deleteWhere may read."""
    input_name = input_name or action.input
    sql = statement(table, action, input_name, now_ms)
    # the session's catalog caches tables: act on what other processes committed since
    spark.sql(f"REFRESH TABLE {table}")
    result = ActionResult(action=action.name, table=table, statement=sql)
    t0 = time.perf_counter()
    if action.name == "delete_from_dataset":
        _delete(spark, action, input_name, result, dry_run)
    else:
        _procedure(spark, action, result, now_ms)
    result.seconds = time.perf_counter() - t0
    return result


def _delete(
    spark: SparkSession, action: Action, input_name: str, result: ActionResult, dry_run: bool
) -> None:
    table = result.table
    where = action.delete_where if action.delete_where and not action.all else "true"
    counted = spark.sql(f"SELECT count(*) FROM {table} AS {input_name} WHERE {where}").collect()
    result.rows_matched = int(counted[0][0])
    result.rows_total = int(spark.sql(f"SELECT count(*) FROM {table}").collect()[0][0])
    result.dry_run = dry_run
    # counted, not parsed: `id = id` or `coalesce(true, false)` match every row as `1 = 1` does
    everything = result.rows_matched == result.rows_total > 0
    if everything and not action.all and not dry_run:
        raise JobFailed(
            f"delete_from_dataset on {table}: deleteWhere {action.delete_where!r} matches every row "
            f"({result.rows_matched} of {result.rows_total}); nothing was deleted. "
            "Give all: true to delete every row"
        )
    if not dry_run and result.rows_matched:
        with_retries(lambda: spark.sql(result.statement).collect())


def _procedure(spark: SparkSession, action: Action, result: ActionResult, now_ms: int | None) -> None:
    rows: list = []

    def call() -> None:
        rows[:] = spark.sql(result.statement).collect()

    opts = action.options
    if isinstance(opts, RemoveOrphansOptions) and _under_procedure_minimum(opts, now_ms):
        rows = [(f,) for f in _forced_orphan_removal(spark, result.table, opts)]
    else:
        with_retries(call)
    if isinstance(opts, RemoveOrphansOptions):
        result.files = [r[0] for r in rows]
        result.dry_run = opts.dry_run
        result.counters["orphan_files"] = len(result.files)
    else:
        for row in rows[:1]:
            result.counters = {k: int(v) for k, v in row.asDict().items() if isinstance(v, int)}


# remove_orphan_files itself refuses cutoffs under a day; Iceberg points at its action API for those.
PROCEDURE_MINIMUM_MS = DAY_MS


def _under_procedure_minimum(opts: RemoveOrphansOptions, now_ms: int | None) -> bool:
    cutoff = opts.cutoff_millis
    return (
        cutoff is not None
        and opts.force
        and cutoff > (now_ms or int(time.time() * 1000)) - PROCEDURE_MINIMUM_MS
    )


def _forced_orphan_removal(spark: SparkSession, table: str, opts: RemoveOrphansOptions) -> list[str]:
    """Iceberg's DeleteOrphanFiles action (what the procedure runs), for a forced cutoff under a day."""
    if opts.dry_run:
        raise ValueError(
            f"remove_orphans on {table}: a dry run lists orphans older than a day at least; "
            "give an older cutoff to list them"
        )
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    ice = java_table(spark, table)
    delete = jvm.org.apache.iceberg.spark.actions.SparkActions.get(spark._jsparkSession).deleteOrphanFiles(
        ice
    )
    delete = delete.olderThan(opts.cutoff_millis)
    if opts.location:
        delete = delete.location(opts.location)
    return [str(f) for f in delete.execute().orphanFileLocations()]


def run_actions(
    spark: SparkSession, job: Job, depots: DepotMap, settings: Settings, name: str = "job"
) -> list[ActionResult]:
    """A job's actions in order, all checked first. Inputs other than an action's own table are read
    as views (deleteWhere may use them in subqueries)."""
    inputs = {i.name: i for i in job.inputs}
    planned = [(inputs[a.input].address.table, a) for a in job.actions]
    now_ms = int(time.time() * 1000)
    check_all(spark, planned, now_ms, f"{name}: ", "no action ran")
    targets = {a.input for a in job.actions}
    for item in job.inputs:
        if item.name not in targets and not spark.catalog.tableExists(item.name):
            io.read_input(spark, item, depots, settings).createOrReplaceTempView(item.name)
    return [run_checked(spark, p, now_ms, f"{name}: ") for p in planned]


def check_all(
    spark: SparkSession, planned: list[tuple[str, Action]], now_ms: int, prefix: str, none: str
) -> None:
    """Every planned action checked before any runs: one refused, none runs (`none` says so)."""
    for table, action in planned:
        try:
            check(spark, table, action, now_ms)
        except (*SPARK_ERRORS, ValueError) as exc:
            raise JobFailed(f"{prefix}{short(exc)}; {none}") from exc


def run_checked(
    spark: SparkSession, planned: tuple[str, Action], now_ms: int, prefix: str, dry_run: bool = False
) -> ActionResult:
    """One checked action on its table; a Spark failure names the action and the table."""
    table, action = planned
    try:
        return run_action(spark, table, action, dry_run=dry_run, now_ms=now_ms)
    except SPARK_ERRORS as exc:
        raise JobFailed(f"{prefix}{action.name} on {table} failed: {short(exc)}") from exc


def plan(
    kind: str, settings: TableMaintenance, health: TableHealth | None, now_ms: int, targeted: bool
) -> Action:
    """The action a kind of maintenance runs. Targeted compaction (health-driven) rewrites only the
    small files (under the small-file size, two or more per partition); scheduled compaction runs
    rewrite_data_files with Iceberg's defaults."""
    t = settings.thresholds
    if kind == "compaction":
        props: dict[str, str] = {}
        if targeted and health is not None:
            props = {"min-file-size-bytes": str(health.small_file_size), "min-input-files": "2"}
            if health.delete_files >= t.max_delete_files:
                props["delete-file-threshold"] = "1"
        return Action(name="rewrite_dataset", input="table", options={"properties": props})
    if kind == "manifests":
        return Action(name="rewrite_manifest", input="table")
    if kind == "expiry":
        cutoff = now_ms - int(t.max_snapshot_age_hours * 3_600_000)
        retain = settings.retain_last
        if health is not None and health.snapshots > t.max_snapshots:
            cutoff, retain = now_ms, max(retain, t.max_snapshots // 2)
        return Action(
            name="expire_snapshots", input="table", options={"olderThanMillis": cutoff, "retainLast": retain}
        )
    if kind == "orphans":
        cutoff = now_ms - int(settings.orphan_age_days * DAY_MS)
        return Action(name="remove_orphans", input="table", options={"olderThanMillis": cutoff})
    raise ValueError(f"unknown maintenance {kind!r}; allowed: compaction, manifests, expiry, orphans")
