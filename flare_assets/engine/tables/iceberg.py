"""Writes a DataFrame to an Iceberg table with the output's mode, partition spec, sort and properties.

Every statement here is Iceberg's own Spark SQL or DataFrameWriterV2 call; each commit is atomic, so
a failed write leaves the table at its previous snapshot.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, DataFrameWriterV2, SparkSession
from pyspark.sql import functions as F

from flare_assets.engine.tables import schema_changes
from flare_assets.engine.tables.access import java_table, literal, quote
from flare_assets.engine.tables.commits import WRITE_ATTEMPTS, metadata_commit, with_retries
from flare_assets.engine.tables.faults import fault_point
from flare_assets.engine.tables.refs import (
    MERGE_SNAPSHOT,
    create_audit_branch,
    drop_branch,
    find_snapshot,
    head,
    publish,
)
from flare_assets.engine.tables.write_plan import bounded_writers
from flare_assets.spec.model import Output, PartitionField

# A stream micro-batch's commits carry these in their snapshot summary (engine/stream/micro_batch.py).
STREAM_ID, STREAM_BATCH = "flare.stream-id", "flare.stream-batch"
STAGE_PREFIX = "flare_stage_"


def fill_missing_columns(spark: SparkSession, table: str, df: DataFrame) -> DataFrame:
    """Table columns the result lacks are written as nulls (a column added by an earlier write
    whose data commit never landed, or one the job stopped producing); required ones still fail."""
    have = {c.lower() for c in df.columns}
    missing = [f for f in spark.table(table).schema.fields if f.name.lower() not in have and f.nullable]
    if not missing:
        return df
    return df.select("*", *(F.lit(None).cast(f.dataType).alias(f.name) for f in missing))


def _sql_term(transform: str, column: str) -> str | None:
    """Iceberg's transform names (`day`, `bucket[4]`) as the Spark SQL terms DDL takes."""
    col = quote(column) if not column.isidentifier() else column
    if transform == "identity":
        return col
    if transform in ("year", "month", "day", "hour"):
        return f"{transform}s({col})"
    for kind in ("bucket", "truncate"):
        if transform.startswith(kind + "["):
            return f"{kind}({transform[len(kind) + 1 : -1]}, {col})"
    return None  # void: a field dropped from a format v1 table


def partition_terms(spark: SparkSession, table: str) -> list[str]:
    """The table's current partition spec as SQL terms, read from Iceberg's own table object."""
    spec = java_table(spark, table).spec()
    terms = []
    for field in spec.fields():
        term = _sql_term(field.transform().toString(), spec.schema().findColumnName(field.sourceId()))
        if term:
            terms.append(term)
    return terms


def evolve_partitions(spark: SparkSession, table: str, declared: list[PartitionField]) -> list[str]:
    """Brings the table's spec to the declared one; old files keep their layout. Returns the DDL run."""
    current = partition_terms(spark, table)
    wanted = [f.term for f in declared]
    ddl = [f"ALTER TABLE {table} DROP PARTITION FIELD {t}" for t in current if t not in wanted]
    for field in declared:
        if field.term not in current:
            alias = f" AS {quote(field.name)}" if field.name else ""
            ddl.append(f"ALTER TABLE {table} ADD PARTITION FIELD {field.term}{alias}")
    for statement in ddl:
        spark.sql(statement)
    return ddl


def lost_metadata(spark: SparkSession, table: str) -> str | None:
    """The newest Iceberg metadata file at the table's default location (`<warehouse>/<ns>/<table>`),
    when there is one: a table the catalog does not list but whose files are still there."""
    catalog, namespace, name = table.split(".", 2)
    warehouse = spark.conf.get(f"spark.sql.catalog.{catalog}.warehouse", None)
    if not warehouse or "/" not in warehouse:  # a REST catalog's warehouse is a name, not a place
        return None
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    location = f"{warehouse.rstrip('/')}/{namespace.replace('.', '/')}/{name}/metadata"
    folder = jvm.org.apache.hadoop.fs.Path(location)
    fs = folder.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(folder):
        return None
    found = fs.globStatus(jvm.org.apache.hadoop.fs.Path(location + "/*.metadata.json")) or []

    def version(status: Any) -> tuple[int, int]:
        prefix = str(status.getPath().getName()).split("-", 1)[0]
        return (int(prefix) if prefix.isdigit() else -1, int(status.getModificationTime()))

    newest = max(found, key=version, default=None)
    if newest is None:
        return None
    return str(newest.getPath().toUri().getPath()) if "://" not in warehouse else str(newest.getPath())


def create_table(spark: SparkSession, df: DataFrame, output: Output) -> None:
    address = output.address
    lost = lost_metadata(spark, address.table)
    if lost is not None:  # unless another writer is creating the table this very moment
        time.sleep(2)
    if lost is not None and not spark.catalog.tableExists(address.table):
        raise ValueError(
            f"{address.table} is not in the catalog, but its location already holds Iceberg metadata "
            f"({lost}): the catalog lost the table, and creating it again would hide its rows and history. "
            f"Register it to bring them back: flare register {address.table} {lost} (or move that folder "
            "away to start a new table)"
        )
    props = output.options.table_properties
    columns = df._jdf.schema().toDDL()
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {address.depot}.{quote(address.namespace)}")
    tblprops = ", ".join(f"{literal(k)}={literal(v)}" for k, v in props.items())
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {address.table} ({columns}) USING iceberg"
        + (f" TBLPROPERTIES ({tblprops})" if props else "")
    )
    sort = output.options.sort
    if sort:
        order = ", ".join(f"{quote(c.name)} {c.order.upper()}" for c in sort.columns)
        local = "LOCALLY " if sort.mode == "partition" else ""
        spark.sql(f"ALTER TABLE {address.table} WRITE {local}ORDERED BY {order}")


def check_partition_columns(output: Output, columns: list[str]) -> None:
    options = output.options
    spec = options.partition_fields or []
    named = (
        [f.column for f in spec]
        + list(options.partition_by or [])
        + ([options.commit_by] if options.commit_by else [])
    )
    missing = [c for c in named if c.lower() not in {x.lower() for x in columns}]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} (named by partitionSpec, partitionBy or commitBy) are not columns of the "
            f"result ({', '.join(columns)})"
        )


@dataclass(frozen=True)
class _Request:
    """What one write of an output asks for, beyond its rows (see write)."""

    output: Output
    created: bool
    schema_ddl: list[str]
    branch: str | None
    properties: dict[str, str]
    slice_condition: Column | None
    private: bool


@dataclass(frozen=True)
class _Commit:
    """One commit of rows into `target`, the table or one of its branches."""

    output: Output
    target: str
    created: bool  # nothing in the target for the rows to replace or merge with: they are appended
    properties: dict[str, str]
    slice_condition: Column | None = None


def write(
    spark: SparkSession,
    df: DataFrame,
    output: Output,
    branch: str | None = None,
    properties: dict[str, str] | None = None,
    slice_condition: Column | None = None,
    private: bool = False,
) -> list[str]:
    """Writes `df` as the output says; returns the partition and schema DDL that ran (for the metadata).

    `properties` go into the summary of the commit that writes the rows (the last one, with
    commitBy); `slice_condition` makes an overwrite replace exactly those rows; `private` says the
    branch is the run's own (an audit branch), so several commits there are still one publish."""
    table = output.address.table
    created = not spark.catalog.tableExists(table)
    schema_ddl: list[str] = []
    if not created and output.options.write_mode != "merge":  # refused before anything is committed
        schema_ddl = schema_changes.plan(table, spark.table(table).schema, df.schema)
    request = _Request(output, created, schema_ddl, branch, properties or {}, slice_condition, private)
    if not schema_ddl or df.is_cached:
        return _write(spark, df, request)
    # the rows are computed before the schema changes: a result that fails to compute changes nothing
    held = df.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        held.count()
        return _write(spark, held, request)
    finally:
        held.unpersist()


def _write(spark: SparkSession, df: DataFrame, request: _Request) -> list[str]:
    output, created = request.output, request.created
    table, options = output.address.table, output.options
    ddl = _prepare_table(spark, df, request)
    if not created:
        df = fill_missing_columns(spark, table, df)
    branch = request.branch or options.branch
    target = table
    if branch:
        statement = f"ALTER TABLE {table} CREATE BRANCH IF NOT EXISTS {quote(branch)}"
        metadata_commit(spark, table, "branch", lambda: spark.sql(statement))
        target = f"{table}.{quote('branch_' + branch)}"
    props = request.properties
    if options.write_mode == "merge" and props and not request.private and not created:
        _staged_merge(spark, df, request, branch or "main")
    elif options.commit_by is None:
        commit = _Commit(output, target, created, props, request.slice_condition)
        with_retries(lambda: _commit(spark, df, commit))
    else:
        _commit_by(spark, df, request, target)
    return [] if created else ddl


def _prepare_table(spark: SparkSession, df: DataFrame, request: _Request) -> list[str]:
    """Creates the table, or evolves its partition spec and schema as the output asks: the DDL run."""
    output = request.output
    table, spec = output.address.table, output.options.partition_fields
    if request.created:
        create_table(spark, df, output)
    ddl = evolve_partitions(spark, table, spec) if spec is not None else []
    for statement in request.schema_ddl:
        spark.sql(statement)
    return ddl + request.schema_ddl


def _commit_by(spark: SparkSession, df: DataFrame, request: _Request, target: str) -> None:
    """Partial progress: one commit per value of commitBy, in order, each visible as it lands."""
    output, props = request.output, request.properties
    commit_by = output.options.commit_by
    assert commit_by is not None
    values = [r[0] for r in df.select(commit_by).distinct().orderBy(commit_by).collect()]
    for n, value in enumerate(values):
        chunk = df.filter(F.col(commit_by).isNull() if value is None else F.col(commit_by) == F.lit(value))
        full_refresh_started = n > 0 and output.options.write_mode == "overwrite"
        last = props if n == len(values) - 1 else {}
        commit = _Commit(output, target, request.created or full_refresh_started, last)
        with_retries(lambda c=chunk, commit=commit: _commit(spark, c, commit))
    if not values and props:
        with_retries(lambda: _commit(spark, df, _Commit(output, target, True, props)))


def _commit(spark: SparkSession, df: DataFrame, commit: _Commit) -> None:
    output, target, properties = commit.output, commit.target, commit.properties
    options = output.options
    mode = options.write_mode
    if mode == "merge" and not commit.created:  # a new table is the whole result, as dbt's incremental models
        merge = options.merge_spec
        assert merge is not None
        view = f"__flare_merge_{output.name}"
        df.createOrReplaceTempView(view)
        before = _ref_head(spark, target)
        spark.sql(f"MERGE INTO {target} AS old USING {view} AS new ON {merge.on_clause} {merge.when_clause}")
        spark.catalog.dropTempView(view)
        if properties:  # SQL takes no snapshot properties: an empty append right after carries them
            merged = _ref_head(spark, target)
            marker = {**properties, MERGE_SNAPSHOT: str(merged)} if merged != before else properties
            _writer(df.limit(0), target, marker).append()
        return
    with bounded_writers(spark, output.address.table, df) as layout:  # see engine/tables/write_plan.py
        writer = _writer(df, target, properties).options(**layout)
        if commit.slice_condition is not None:
            writer.overwrite(commit.slice_condition)
        elif mode == "append" or commit.created:
            writer.append()
        elif mode == "overwrite-dynamic":
            writer.overwritePartitions()
        else:
            writer.overwrite(F.lit(True))


def _ref_head(spark: SparkSession, target: str) -> int | None:
    """The snapshot a write target (`table` or `table.`branch_x``) points at."""
    table, _, ref = target.partition(".`branch_")
    return head(spark, table, ref[:-1].replace("``", "`") if ref else "main")[0]


def _writer(df: DataFrame, target: str, properties: dict[str, str]) -> DataFrameWriterV2:
    writer = df.writeTo(target)
    for key, value in properties.items():
        writer = writer.option(f"snapshot-property.{key}", value)
    return writer


def _staged_merge(spark: SparkSession, df: DataFrame, request: _Request, branch: str) -> None:
    """A MERGE and its properties land on a private branch, then `branch` fast-forwards to it: one
    atomic move, so readers never see the rows without the state that goes with them."""
    output, props = request.output, request.properties
    table = output.address.table
    for attempt in range(WRITE_ATTEMPTS):
        stage = stage_name(props) + f"{random.getrandbits(40):x}"
        create_audit_branch(spark, table, stage, branch)
        try:
            _commit(spark, df, _Commit(output, f"{table}.{quote('branch_' + stage)}", False, props))
            fault_point("stage-committed")
            publish(spark, table, stage, branch)
            return
        except ValueError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.5, 1.5) * min(2**attempt, 8))
        finally:
            drop_branch(spark, table, stage)


def stage_name(props: dict[str, str]) -> str:
    """The start of a merge's private stage branch name: a stream batch's names its stream and batch
    (`flare_stage_<stream>_<batch>_`), so a later run of that stream knows a stage left behind."""
    if STREAM_ID in props and STREAM_BATCH in props:
        return f"{STAGE_PREFIX}{props[STREAM_ID].replace('-', '')[:16]}_{props[STREAM_BATCH]}_"
    return STAGE_PREFIX


def settle_stages(
    spark: SparkSession, table: str, branch: str, stream: str, next_batch: int | None
) -> list[str]:
    """Stage branches a stream's earlier run left (it stopped between a merge's commit on its stage
    and the publish): the one holding exactly `next_batch` on top of `branch`'s head is published,
    others are dropped (their batch runs again). Returns what was done, for the run's log."""
    if not spark.catalog.tableExists(table):
        return []
    ice = java_table(spark, table)
    ice.refresh()  # another process (the run that stopped) wrote the branches
    prefix = stage_name({STREAM_ID: stream, STREAM_BATCH: ""})[:-1]
    refs = ice.refs()
    names = sorted(str(n) for n in refs.keySet() if str(n).startswith(prefix))
    target_ref = refs.get(branch)
    target = int(target_ref.snapshotId()) if target_ref is not None else None
    notes = []
    for name in names:
        batch = _stage_batch(ice, int(refs.get(name).snapshotId()), target, stream)
        committed = next_batch is not None and find_snapshot(
            spark, table, {STREAM_ID: stream, STREAM_BATCH: str(next_batch)}, branch, STREAM_BATCH
        )
        if batch is not None and batch == next_batch and not committed:
            try:
                publish(spark, table, name, branch)
                drop_branch(spark, table, name)
                notes.append(
                    f"{table}: stage branch {name} held batch {batch}, committed but not published by the "
                    f"run that stopped; it is exactly the next batch on top of {branch}, so it was published"
                )
                continue
            except ValueError as exc:
                why = str(exc)
        elif batch is None:
            why = f"it is not one batch of this stream on top of {branch}'s head"
        elif committed:
            why = f"batch {batch} is on {branch} already"
        else:
            why = f"it holds batch {batch}, and the batch to run is {next_batch}"
        drop_branch(spark, table, name)
        notes.append(f"{table}: dropped stage branch {name} ({why}); its batch runs again")
    return notes


def _stage_batch(ice: Any, stage_head: int, target: int | None, stream: str) -> int | None:
    """The batch a stage branch holds when its commits are one batch of `stream` right on top of
    `target` (the head must carry the batch's markers), else None."""
    batches: set[int] = set()
    snapshot_id: int | None = stage_head
    marked = False
    while snapshot_id != target:
        if snapshot_id is None:
            return None  # the stage does not descend from the target's head: the target moved on
        snapshot = ice.snapshot(snapshot_id)
        if snapshot is None:
            return None
        props = snapshot.summary()
        owner, batch = props.get(STREAM_ID), props.get(STREAM_BATCH)
        if owner is not None:
            if str(owner) != stream or batch is None or not str(batch).isdigit():
                return None
            batches.add(int(str(batch)))
            marked = marked or snapshot_id == stage_head
        elif snapshot_id == stage_head:
            return None  # the merge landed, its markers did not
        parent = snapshot.parentId()
        snapshot_id = int(parent) if parent is not None else None
    return batches.pop() if marked and len(batches) == 1 else None


def resolve_column_tags(output: Output, columns: list[str]) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for entry in output.column_tags:
        for column in entry.columns(columns):
            tags.setdefault(column, [])
            tags[column] += [t for t in entry.tags if t not in tags[column]]
    return tags


def store_column_tags(spark: SparkSession, table: str, tags: dict[str, list[str]]) -> None:
    """As table properties `flare.column-tags.<column>`, so any engine reading the table sees them;
    no commit when the table has them already."""
    wanted = {f"flare.column-tags.{c}": ",".join(t) for c, t in tags.items()}
    if not wanted:
        return

    def commit() -> None:
        current = java_table(spark, table).properties()
        changed = {k: v for k, v in wanted.items() if current.get(k) != v}
        if changed:
            props = ", ".join(f"{literal(k)}={literal(v)}" for k, v in changed.items())
            spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ({props})")

    metadata_commit(spark, table, "column tags", commit)
