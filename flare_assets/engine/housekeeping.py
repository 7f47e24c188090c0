"""Housekeeping of an output's partitions: retention, archiving and compaction by Spark SQL
expressions, as Smart Data Lake Builder does it, for folders of files and Iceberg tables.

Expressions are evaluated by Spark SQL over one row per partition (SDLB's PartitionExpressionData:
feed, application, runId, runStartTime, dataObjectId, elements). Every expression is evaluated for
every partition, and every result checked, before anything moves.

Crash safety. Iceberg: each step (DELETE, MERGE, rewrite_data_files) is one atomic commit. Files:
archive moves are written to a journal first and are file renames, so a file is in its old or its
new partition, never both and never neither; compaction writes into a temporary folder, marks it
complete, then swaps it in with two folder renames. A run that finds a journal, a complete
temporary folder or a retired folder finishes that work before anything else.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, MapType, StringType

from flare_assets.depots import DepotMap
from flare_assets.engine.errors import SPARK_ERRORS, short
from flare_assets.engine.tables import io
from flare_assets.engine.tables.access import literal, procedure_call, quote
from flare_assets.engine.tables.commits import with_retries
from flare_assets.engine.tables.layout import (
    COMPACTED,
    FileSystem,
    Partition,
    file_partitions,
    iceberg_partitions,
    partition_dir,
)
from flare_assets.engine.tables.refs import head
from flare_assets.settings import Settings
from flare_assets.spec.housekeeping import Housekeeping, partition_columns
from flare_assets.spec.model import Output

EXPRESSION_SCHEMA = (
    "i int, feed string, application string, runId int, runStartTime timestamp, dataObjectId string, "
    "elements map<string,string>"
)
WANTED = {
    "retentionCondition": "boolean",
    "archivePartitionExpression": "map<string,string>",
    "compactPartitionExpression": "boolean",
}
WORK = "_flare_housekeeping"  # hidden from readers (Spark skips folders starting with _)
JOURNAL = f"{WORK}/archive.json"
TARGET_FILE_BYTES = 128 * 1024 * 1024  # files compaction: one output file per this many input bytes


@dataclass(frozen=True)
class HousekeepingContext:
    """What expressions see besides the partition values."""

    feed: str
    application: str
    run_id: int
    run_start: datetime
    data_object_id: str


@dataclass
class HousekeepingResult:
    mode: str
    partitions_before: int = 0
    partitions_after: int = 0
    files_before: int = 0
    files_after: int = 0
    deleted: list[str] = field(default_factory=list)
    archived: dict[str, str] = field(default_factory=dict)
    compacted: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    snapshot_id: int | None = None
    seconds: float = 0.0


def context(feed: str, output: Output, run_id: int, application: str = "flare_assets") -> HousekeepingContext:
    return HousekeepingContext(feed, application, run_id, datetime.now(UTC), output.dataset)


def _frame(spark: SparkSession, ctx: HousekeepingContext, parts: list[Partition]) -> DataFrame:
    rows = [
        (i, ctx.feed, ctx.application, ctx.run_id, ctx.run_start, ctx.data_object_id, p.values)
        for i, p in enumerate(parts)
    ]
    return spark.createDataFrame(rows, EXPRESSION_SCHEMA)


def _typed(frame: DataFrame, key: str, text: str) -> Column:
    """The expression as a column of the wanted type; Spark's analysis says what is wrong."""
    try:
        column = F.expr(text)
        dtype = frame.select(column.alias("r")).schema["r"].dataType
    except SPARK_ERRORS as exc:
        raise ValueError(f"housekeeping.{key} {text!r} does not run in Spark SQL: {short(exc)}") from exc
    wanted = WANTED[key]
    if wanted == "boolean":
        ok = isinstance(dtype, BooleanType)
    else:
        ok = isinstance(dtype, MapType) and isinstance(dtype.keyType, StringType)
    if not ok:
        raise ValueError(f"housekeeping.{key} {text!r} returns {dtype.simpleString()}; expected {wanted}")
    return column.cast(wanted)


def check(spark: SparkSession, output: Output, ctx: HousekeepingContext) -> None:
    """Result types of the output's expressions, checked by Spark's analysis on no rows."""
    if output.housekeeping is not None:
        frame = _frame(spark, ctx, [])
        for key, text in output.housekeeping.expressions().items():
            _typed(frame, key, text)


def _evaluate(frame: DataFrame, parts: list[Partition], expressions: dict[str, str]) -> dict[str, list[Any]]:
    """Each expression's value for each partition, in one Spark query; null is an error naming the
    partition."""
    columns = [_typed(frame, key, text).alias(f"r{n}") for n, (key, text) in enumerate(expressions.items())]
    values: dict[str, list[Any]] = {key: [None] * len(parts) for key in expressions}
    try:
        rows = frame.select("i", *columns).collect()
    except SPARK_ERRORS as exc:
        raise ValueError(f"housekeeping: {', '.join(expressions)} failed in Spark: {short(exc)}") from exc
    for row in rows:
        for n, key in enumerate(expressions):
            values[key][row["i"]] = row[f"r{n}"]
    for key, text in expressions.items():
        nulls = [parts[i].label() for i, v in enumerate(values[key]) if v is None]
        if nulls:
            more = f" and {len(nulls) - 3} more" if len(nulls) > 3 else ""
            raise ValueError(
                f"housekeeping.{key} {text!r} returns null for partition {', '.join(nulls[:3])}{more}; "
                f"it must return a {WANTED[key]} for every partition"
            )
    return values


def _targets(
    values: list[dict[str, str | None]], parts: list[Partition], columns: list[str], text: str
) -> list:
    """New partition values, keyed like the partition columns; every column, no other."""
    by_lower = {c.lower(): c for c in columns}
    out = []
    for value, part in zip(values, parts, strict=True):
        unknown = sorted(k for k in value if k.lower() not in by_lower)
        missing = sorted(c for c in columns if c.lower() not in {k.lower() for k in value})
        if unknown or missing:
            what = f"names {', '.join(unknown)}, not a partition column" if unknown else ""
            what += ("; " if what and missing else "") + (f"misses {', '.join(missing)}" if missing else "")
            raise ValueError(
                f"housekeeping.archivePartitionExpression {text!r} for partition {part.label()}: {what}; "
                f"the map holds every partition column: {', '.join(columns)}"
            )
        out.append({by_lower[k.lower()]: v for k, v in value.items()})
    return [{c: t[c] for c in columns} for t in out]


@dataclass
class _Plan:
    delete: list[Partition] = field(default_factory=list)
    archive: list[tuple[Partition, dict[str, str | None]]] = field(default_factory=list)
    compact: list[Partition] = field(default_factory=list)


def _compactions(
    spark: SparkSession,
    hk: Housekeeping,
    ctx: HousekeepingContext,
    parts: list[Partition],
    columns: list[str],
) -> list[Partition]:
    """The partitions to compact among `parts`, decided again after an archive made new ones."""
    only = Housekeeping(compact_partition_expression=hk.compact_partition_expression)
    return _plan(spark, only, ctx, parts, columns).compact


def _plan(
    spark: SparkSession,
    hk: Housekeeping,
    ctx: HousekeepingContext,
    parts: list[Partition],
    columns: list[str],
) -> _Plan:
    """Everything decided, and every result checked, before anything moves."""
    plan = _Plan()
    if not parts:
        return plan
    values = _evaluate(_frame(spark, ctx, parts), parts, hk.expressions())
    if "retentionCondition" in values:
        plan.delete = [p for p, keep in zip(parts, values["retentionCondition"], strict=True) if not keep]
    archived: set[int] = set()
    if "archivePartitionExpression" in values:
        text = hk.archive_partition_expression or ""
        targets = _targets(values["archivePartitionExpression"], parts, columns, text)
        for i, (part, new) in enumerate(zip(parts, targets, strict=True)):
            if new != part.values:
                plan.archive.append((part, new))
                archived.add(i)
    if "compactPartitionExpression" in values:
        flags = values["compactPartitionExpression"]
        plan.compact = [
            p for i, (p, f) in enumerate(zip(parts, flags, strict=True)) if f and i not in archived
        ]
    return plan


def run(
    spark: SparkSession, output: Output, depots: DepotMap, settings: Settings, ctx: HousekeepingContext
) -> HousekeepingResult:
    """Applies the output's housekeeping to what is stored now."""
    hk = output.housekeeping
    assert hk is not None
    start = time.perf_counter()
    if depots.is_iceberg(output.address):
        result = _iceberg(spark, output.address.table, hk, ctx)
    else:
        result = _files(spark, output, depots, settings, hk, ctx)
    result.seconds = time.perf_counter() - start
    return result


# --- Iceberg tables -----------------------------------------------------------------------------


def _where(parts: list[Partition], types: dict[str, str]) -> str:
    """A predicate on identity partition columns selecting exactly these partitions."""

    def one(p: Partition) -> str:
        terms = [
            f"{quote(c)} IS NULL" if v is None else f"{quote(c)} = CAST({literal(v)} AS {types[c]})"
            for c, v in p.values.items()
        ]
        return "(" + " AND ".join(terms) + ")"

    return " OR ".join(one(p) for p in parts)


def _iceberg(
    spark: SparkSession, table: str, hk: Housekeeping, ctx: HousekeepingContext
) -> HousekeepingResult:
    result = HousekeepingResult(mode=hk.type or "")
    if not spark.catalog.tableExists(table):
        return result
    columns, parts, result.files_before = iceberg_partitions(spark, table)
    result.partitions_before = len(parts)
    types = {f.name: f.dataType.simpleString() for f in spark.table(table).schema.fields}
    plan = _plan(spark, hk, ctx, parts, columns)
    if plan.delete:
        with_retries(lambda: spark.sql(f"DELETE FROM {table} WHERE {_where(plan.delete, types)}").collect())
        result.deleted = [p.label() for p in plan.delete]
    if plan.archive:
        _archive_rows(spark, table, plan.archive, columns, types)
        result.archived = {p.label(): Partition(values=new).label() for p, new in plan.archive}
    if hk.compact_partition_expression:
        if plan.archive:  # targets of the archive may be new partitions: decide on what is there now
            _, now, _ = iceberg_partitions(spark, table)
            moved = {p.label() for p, _ in plan.archive}
            plan.compact = [p for p in _compactions(spark, hk, ctx, now, columns) if p.label() not in moved]
        if plan.compact:
            result.compacted = _rewrite(spark, table, plan.compact, types)
    _, final, result.files_after = iceberg_partitions(spark, table)
    result.partitions_after = len(final)
    result.snapshot_id = head(spark, table)[0]
    return result


def _archive_rows(
    spark: SparkSession,
    table: str,
    moves: list[tuple[Partition, dict[str, str | None]]],
    columns: list[str],
    types: dict[str, str],
) -> None:
    """Rows of each source partition take the new values: one MERGE, one atomic commit."""
    rows = [tuple(p.values[c] for c in columns) + tuple(new[c] for c in columns) for p, new in moves]
    schema = ", ".join(
        [f"`src_{i}` string" for i in range(len(columns))]
        + [f"`dst_{i}` string" for i in range(len(columns))]
    )
    raw = spark.createDataFrame(rows, schema)
    typed = raw.select(
        *[F.col(f"src_{i}").cast(types[c]).alias(f"src_{i}") for i, c in enumerate(columns)],
        *[F.col(f"dst_{i}").cast(types[c]).alias(f"dst_{i}") for i, c in enumerate(columns)],
        *[F.col(f"dst_{i}").alias(f"raw_{i}") for i in range(len(columns))],
    )
    bad = (
        typed.filter(" OR ".join(f"(raw_{i} IS NOT NULL AND dst_{i} IS NULL)" for i in range(len(columns))))
        .limit(3)
        .collect()
    )
    if bad:
        values = [{c: r[f"raw_{i}"] for i, c in enumerate(columns)} for r in bad]
        raise ValueError(
            f"housekeeping.archivePartitionExpression returns values that are not of the columns' types "
            f"({', '.join(f'{c} {types[c]}' for c in columns)}): {values}"
        )
    view = "__flare_archive_moves"
    typed.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{quote(c)} <=> m.src_{i}" for i, c in enumerate(columns))
    sets = ", ".join(f"t.{quote(c)} = m.dst_{i}" for i, c in enumerate(columns))
    try:
        with_retries(
            lambda: spark.sql(
                f"MERGE INTO {table} t USING {view} m ON {on} WHEN MATCHED THEN UPDATE SET {sets}"
            )
        )
    finally:
        spark.catalog.dropTempView(view)


def _rewrite(spark: SparkSession, table: str, parts: list[Partition], types: dict[str, str]) -> list[str]:
    """rewrite_data_files on the partitions; one with a single file is left alone (done already)."""
    where = literal(_where(parts, types))
    call = procedure_call(
        table, "rewrite_data_files", {"where": where, "options": "map('min-input-files', '2')"}
    )
    done: list[Any] = []
    with_retries(lambda: done.extend(spark.sql(call).collect()))
    rewritten = int(done[0]["rewritten_data_files_count"]) if done else 0
    return [p.label() for p in parts] if rewritten else []


# --- folders of files ---------------------------------------------------------------------------


def _files(
    spark: SparkSession,
    output: Output,
    depots: DepotMap,
    settings: Settings,
    hk: Housekeeping,
    ctx: HousekeepingContext,
) -> HousekeepingResult:
    result = HousekeepingResult(mode=hk.type or "")
    columns = partition_columns(output.options, iceberg=False)
    fs = FileSystem(io.folder(output.address, depots, settings))
    if not fs.exists(""):
        return result
    result.repaired = recover(fs, columns)
    parts = file_partitions(fs, columns)
    result.partitions_before, result.files_before = len(parts), sum(len(p.files) for p in parts)
    plan = _plan(spark, hk, ctx, parts, columns)
    for part in plan.delete:
        _delete(fs, part.path)
    result.deleted = [p.label() for p in plan.delete]
    moves: dict[str, str] = {}
    if plan.archive:
        moves = {p.path: partition_dir(new) for p, new in plan.archive}
        fs.write_json(JOURNAL, {"moves": moves})
        _move(fs, moves, {p.path: p.files for p, _ in plan.archive})
        fs.delete(JOURNAL)
        result.archived = {p.label(): Partition(values=new).label() for p, new in plan.archive}
    if hk.compact_partition_expression:
        if plan.archive:
            now = file_partitions(fs, columns)
            plan.compact = [p for p in _compactions(spark, hk, ctx, now, columns) if p.path not in moves]
        reader, writer = _formats(output, depots)
        for part in plan.compact:
            if (
                len(part.files) > 1
                and not part.compacted
                and _compact(spark, fs, part, reader, writer, columns)
            ):
                result.compacted.append(part.label())
    fs.delete(WORK)
    final = file_partitions(fs, columns)
    result.partitions_after, result.files_after = len(final), sum(len(p.files) for p in final)
    return result


def _formats(output: Output, depots: DepotMap) -> tuple[dict[str, Any], dict[str, Any]]:
    """Format and options to read a partition's files and write them back as the output does."""
    depot = depots.depots[output.address.depot]
    fmt = output.format if output.format != "iceberg" else (depot.format or "parquet")
    extra = {k: v for k, v in output.options.extra_options.items() if k != "coalesce"}
    base = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in depot.options.items()}
    reader = {"format": fmt, "options": {**io.FILE_WRITE_DEFAULTS.get(fmt, {}), **base}}
    writer = {"format": fmt, "options": {**io.FILE_WRITE_DEFAULTS.get(fmt, {}), **base, **extra}}
    return reader, writer


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _delete(fs: FileSystem, rel: str) -> None:
    """The folder leaves the dataset in one rename, then is deleted."""
    gone = f"{WORK}/deleting/{rel}"
    fs.rename(rel, gone)
    fs.delete(gone)
    for parent in _parents(rel):
        fs.remove_if_empty(parent)


def _move(fs: FileSystem, moves: dict[str, str], files: dict[str, list[str]] | None = None) -> None:
    """Moves each source partition's data files into its target, file by file (a rename each: a
    file is always in exactly one partition). Names clashing in the target get the source's hash."""
    made: set[str] = set()
    for src, dst in moves.items():
        names = files.get(src) if files else None
        if names is None:
            if not fs.exists(src):
                continue
            names = [p.rsplit("/", 1)[1] for p in fs.glob(f"{src}/*")]
            names = [n for n in names if not n.startswith(("_", "."))]
        if dst not in made:
            fs.mkdirs(dst)
            made.add(dst)
        for name in names:
            target = f"{dst}/{name}"
            if fs.exists(target):
                stem, _, rest = name.partition(".")
                target = f"{dst}/{stem}-{hashlib.sha1(src.encode()).hexdigest()[:8]}.{rest}"
            fs.rename(src + "/" + name, target, make_parent=False)
        fs.delete(src)
    for src in moves:
        for parent in _parents(src):
            fs.remove_if_empty(parent)


def _compact(
    spark: SparkSession,
    fs: FileSystem,
    part: Partition,
    reader: dict[str, Any],
    writer: dict[str, Any],
    columns: list[str],
) -> bool:
    """Rewrites the partition's files into fewer: written to a temporary folder, marked complete,
    then swapped in (see `recover` for a run that stopped half way). False, and nothing changed,
    when the partition received other files meanwhile."""
    temp = f"{WORK}/compacting/{part.path}"
    fs.delete(temp)
    paths = [f"{fs.root}/{part.path}/{name}" for name in part.files]
    frame = spark.read.format(reader["format"]).options(**reader["options"]).load(paths)
    frame = frame.drop(*[c for c in columns if c in frame.columns])
    size = fs.size(part.path)
    count = max(1, math.ceil(size / TARGET_FILE_BYTES))
    out = frame.coalesce(count).write.format(writer["format"]).options(**writer["options"])
    out.mode("overwrite").save(f"{fs.root}/{temp}")
    written = [p.rsplit("/", 1)[1] for p in fs.glob(f"{temp}/*")]
    fs.delete(f"{temp}/_SUCCESS")
    new = [n for n in written if not n.startswith(("_", "."))]
    fs.write_json(f"{temp}/{COMPACTED}", {"originals": part.files, "files": new})  # the commit point
    if _data_files(fs, part.path) != sorted(part.files):
        fs.delete(temp)  # another writer added files meanwhile: keep them, compact another time
        return False
    _swap(fs, part.path, temp)
    return True


def _swap(fs: FileSystem, rel: str, temp: str) -> None:
    retired = f"{WORK}/retired/{rel}"
    fs.delete(retired)
    fs.rename(rel, retired)
    fs.rename(temp, rel)
    fs.delete(retired)


def _data_files(fs: FileSystem, rel: str) -> list[str]:
    names = [p.rsplit("/", 1)[1] for p in fs.glob(f"{rel}/*")]
    return sorted(n for n in names if not n.startswith(("_", ".")))


def recover(fs: FileSystem, columns: list[str]) -> list[str]:
    """Finishes what a stopped run left: journaled moves, complete compactions; drops incomplete
    compactions (their partition was never touched). Returns the partitions repaired."""
    if not fs.exists(WORK):
        return []
    repaired: list[str] = []
    if fs.exists(JOURNAL):
        moves = fs.read_json(JOURNAL)["moves"]
        _move(fs, moves)
        fs.delete(JOURNAL)
        repaired += [f"{src} -> {dst}" for src, dst in moves.items()]
    depth = "/".join("*" for _ in columns)
    for temp in fs.glob(f"{WORK}/compacting/{depth}"):
        rel = temp.removeprefix(f"{WORK}/compacting/")
        retired = f"{WORK}/retired/{rel}"
        marker = f"{temp}/{COMPACTED}"
        if not fs.exists(marker):
            fs.delete(temp)
            continue
        originals = sorted(fs.read_json(marker)["originals"])
        if fs.exists(rel) and _data_files(fs, rel) == originals:
            _swap(fs, rel, temp)
            repaired.append(f"{rel} compacted")
        elif not fs.exists(rel) and fs.exists(retired):
            fs.rename(temp, rel)
            repaired.append(f"{rel} compacted")
        else:
            fs.delete(temp)  # the partition changed since: its files are still there, untouched
    fs.delete(WORK)
    return repaired
