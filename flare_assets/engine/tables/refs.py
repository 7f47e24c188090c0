"""A table's snapshots, branches and tags: read from its metadata, and moved by metadata commits."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession

from flare_assets.engine.errors import SPARK_ERRORS, short
from flare_assets.engine.tables.access import java_table, literal, procedure_call, quote
from flare_assets.engine.tables.commits import metadata_commit
from flare_assets.spec.actions import millis as spec_millis

# The marker append after a MERGE names the MERGE's own snapshot, whose summary counts its rows.
MERGE_SNAPSHOT = "flare.merge-snapshot-id"


def head(spark: SparkSession, table: str, branch: str = "main") -> tuple[int | None, dict[str, str]]:
    """The snapshot a branch points at, with its summary; read from table metadata (no Spark job)."""
    ice = java_table(spark, table)
    ref = ice.refs().get(branch)
    if ref is None:
        return None, {}
    snapshot = ice.snapshot(ref.snapshotId())
    summary = snapshot.summary() if snapshot is not None else None
    return int(ref.snapshotId()), {str(k): str(summary.get(k)) for k in summary.keySet()} if summary else {}


def find_snapshot(
    spark: SparkSession,
    table: str,
    summary: dict[str, str],
    branch: str = "main",
    ordered_by: str | None = None,
) -> tuple[int, dict[str, str]] | None:
    """The id and summary of a snapshot whose summary holds all of `summary` (None if none does),
    among those readers of `branch` see: its head and the head's ancestors by parent id. Snapshots
    on other branches, or left unreferenced by a failed publish, do not count. `ordered_by`: a key
    of `summary` whose integer value grows along the branch among snapshots sharing the others, so
    the walk stops at a smaller one."""
    if not spark.catalog.tableExists(table):
        return None
    ice = java_table(spark, table)
    ice.refresh()  # the catalog's current metadata, not this session's cached copy
    ref = ice.refs().get(branch)
    snapshot_id = ref.snapshotId() if ref is not None else None
    others = {k: v for k, v in summary.items() if k != ordered_by}
    while snapshot_id is not None:
        snapshot = ice.snapshot(snapshot_id)
        if snapshot is None:  # expired: nothing older is readable
            return None
        props = snapshot.summary()
        if all(str(props.get(k)) == v for k, v in others.items()):
            if ordered_by is None or str(props.get(ordered_by)) == summary[ordered_by]:
                return int(snapshot.snapshotId()), {str(k): str(props.get(k)) for k in props.keySet()}
            value = props.get(ordered_by)
            if value is not None and str(value).isdigit() and int(str(value)) < int(summary[ordered_by]):
                return None
        snapshot_id = snapshot.parentId()
    return None


def written(spark: SparkSession, table: str, branch: str = "main") -> tuple[int | None, dict[str, str]]:
    """The head of a branch just written, with the summary of the commit that wrote its rows: after a
    MERGE, the marker append at the head names the MERGE's snapshot, whose counters are the write's
    (added-records, deleted-records, files); the totals are the head's."""
    snapshot_id, summary = head(spark, table, branch)
    merged = summary.get(MERGE_SNAPSHOT)
    if merged is None:
        return snapshot_id, summary
    snapshot = java_table(spark, table).snapshot(int(merged))
    if snapshot is None:
        return snapshot_id, summary
    own = snapshot.summary()
    counters = {str(k): str(own.get(k)) for k in own.keySet() if not str(k).startswith("total-")}
    return snapshot_id, {**summary, **counters}


TIME_TRAVEL_ALIASES = {
    "snapshotId": "snapshot-id",
    "snapshot-id": "snapshot-id",
    "asOfTimestamp": "as-of-timestamp",
    "as-of-timestamp": "as-of-timestamp",
    "timestamp": "as-of-timestamp",
    "tag": "tag",
    "branch": "branch",
}


def time_travel(spark: SparkSession, table: str, options: dict[str, object]) -> dict[str, str]:
    """Read options selecting a snapshot, a timestamp, a tag or a branch, checked to exist first
    (in the table's metadata, no Spark job). Other options pass through untouched."""
    out: dict[str, str] = {}
    chosen: list[str] = []
    ice = None
    for key, value in options.items():
        name = TIME_TRAVEL_ALIASES.get(key)
        if name is None:
            out[key] = str(value).lower() if isinstance(value, bool) else str(value)
            continue
        chosen.append(key)
        ice = ice or java_table(spark, table)
        snapshots = sorted(((s.timestampMillis(), s.snapshotId()) for s in ice.snapshots()), reverse=True)
        if name == "snapshot-id":
            if ice.snapshot(int(str(value))) is None:
                latest = [sid for _, sid in snapshots[:3]]
                raise ValueError(f"{table} has no snapshot {value}; the latest are {latest}")
            out[name] = str(int(str(value)))
        elif name == "as-of-timestamp":
            millis = spec_millis(value)
            if not snapshots or snapshots[-1][0] > millis:
                first = datetime.fromtimestamp(snapshots[-1][0] / 1000, UTC) if snapshots else None
                raise ValueError(f"{table} has no snapshot at or before {value} (the first is from {first})")
            out[name] = str(millis)
        else:
            refs = ice.refs()
            is_kind = (lambda r: r.isTag()) if name == "tag" else (lambda r: r.isBranch())
            ref = refs.get(str(value))
            if ref is None or not is_kind(ref):
                known = sorted(str(n) for n in refs.keySet() if is_kind(refs.get(n)))
                raise ValueError(f"{table} has no {name} {value!r}; known: {', '.join(known) or '(none)'}")
            out[name] = str(value)
    if len(chosen) > 1:
        raise ValueError(
            f"choose one of snapshot-id, as-of-timestamp, tag or branch; got {', '.join(chosen)}"
        )
    return out


def tag_snapshot(spark: SparkSession, table: str, snapshot_id: int, tag: str, retain_days: int) -> None:
    """Names a snapshot so it can be read back (and is kept by expiry for `retain_days`)."""
    statement = (
        f"ALTER TABLE {table} CREATE TAG IF NOT EXISTS {quote(tag)} AS OF VERSION {snapshot_id} "
        f"RETAIN {retain_days} DAYS"
    )
    metadata_commit(spark, table, "tag", lambda: spark.sql(statement))


def create_audit_branch(spark: SparkSession, table: str, name: str, base: str) -> None:
    """A branch at the head of `base` (or an empty one on a table with no snapshot yet)."""
    head_id = head(spark, table, base)[0] if spark.catalog.tableExists(table) else None
    version = f" AS OF VERSION {head_id}" if head_id is not None else ""
    statement = f"ALTER TABLE {table} CREATE BRANCH {quote(name)}{version}"
    metadata_commit(spark, table, "branch", lambda: spark.sql(statement))


def publish(spark: SparkSession, table: str, audit: str, target: str) -> None:
    """Fast-forwards `target` to the audit branch; fails, naming both, when `target` moved meanwhile."""
    statement = procedure_call(table, "fast_forward", {"branch": literal(target), "to": literal(audit)})
    try:
        metadata_commit(spark, table, "publish", lambda: spark.sql(statement))
    except SPARK_ERRORS as exc:
        raise ValueError(
            f"cannot publish branch {audit!r} into {target!r} of {table}: {short(exc)} ({target} received "
            f"other commits after the audit started; the audited data stays on {audit!r})"
        ) from exc


def drop_branch(spark: SparkSession, table: str, name: str) -> None:
    statement = f"ALTER TABLE {table} DROP BRANCH IF EXISTS {quote(name)}"
    metadata_commit(spark, table, "branch", lambda: spark.sql(statement))
