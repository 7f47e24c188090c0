"""Inputs read incrementally: Flare's `incremental` block, the Iceberg snapshots appended since the
last committed run, or the files not processed yet. Each returns the state the run must commit with
its output, so the next run starts where this one ended, and only if this one landed."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType, TimestampType

from flare_assets.engine.batch.params import escape, substitute
from flare_assets.engine.batch.state import RunState, state_file
from flare_assets.engine.errors import SPARK_ERRORS, short
from flare_assets.engine.tables import access, io, refs
from flare_assets.settings import Settings
from flare_assets.spec.model import Input

if TYPE_CHECKING:
    from flare_assets.engine.batch.context import RunContext

APPEND_ONLY = ("append", "replace")  # replace: compaction, same rows in new files


@dataclass
class Progress:
    """What an incremental input read this run and the state to commit with the output."""

    input: str
    kind: str
    new_data: bool | None  # None: only a count can tell (Flare's incremental block)
    detail: str
    properties: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    folder: Path | None = None
    archive: Path | None = None
    refresh: bool = False  # read again in full: the outputs are replaced, not appended to


def flare_block(
    spark: SparkSession,
    item: Input,
    frame: DataFrame,
    previous: RunState,
    overrides: dict[str, str],
    reset: bool,
) -> tuple[DataFrame, Progress]:
    """Keys carried by `state` start from the committed value (or an override, or their SQL after a
    reset); the others are computed by their SQL every run. Every value is rendered as text by Spark
    in the session's time zone (never the Python process's), the zone the step SQL compares in, and
    the zone is committed with the state so a later session in another zone reads it right."""
    inc = item.incremental
    assert inc is not None
    frame.createOrReplaceTempView(inc.context)
    carried = {s.key for s in inc.state}
    zone = session_zone(spark)
    stored_zone = previous.values.get(STATE_ZONE) or zone
    values: dict[str, str] = {}
    for key in inc.keys:
        query = _key_query(spark, key.name, substitute(key.sql, _escaped(values), f"key {key.name!r}"))
        kind = query.schema.fields[0].dataType
        stored = previous.values.get(previous.state_key(item.name, key.name))
        if key.name in overrides:
            values[key.name] = _render(
                spark, overrides[key.name], kind, zone, f"state value for {key.name!r}"
            )
        elif key.name in carried and stored is not None and not reset:
            values[key.name] = _render(spark, stored, kind, stored_zone, f"committed {key.name!r}")
        else:
            values[key.name] = _key_value(query, key.name)
    try:
        out = spark.sql(substitute(inc.sql, _escaped(values), "incremental sql"))
    except SPARK_ERRORS as exc:
        raise ValueError(f"incremental sql failed: {short(exc)}") from exc
    props = {previous.state_key(item.name, s.key): values[s.value] for s in inc.state}
    if props:
        props[STATE_ZONE] = zone
    detail = ", ".join(f"{k}={v}" for k, v in values.items())
    return out, Progress(item.name, "flare", None, detail, props, values)


def _escaped(values: dict[str, str]) -> dict[str, str]:
    return {k: escape(v) for k, v in values.items()}


def _key_query(spark: SparkSession, name: str, sql: str) -> DataFrame:
    try:
        return spark.sql(sql)
    except SPARK_ERRORS as exc:
        raise ValueError(f"incremental key {name!r}: its SQL failed: {short(exc)}") from exc


def _key_value(query: DataFrame, name: str) -> str:
    """The key's value as its SQL computes it this run, as text."""
    try:
        row = query.select(query[0].cast("string")).first()
    except SPARK_ERRORS as exc:
        raise ValueError(f"incremental key {name!r}: its SQL failed: {short(exc)}") from exc
    if row is None or row[0] is None:
        raise ValueError(
            f"incremental key {name!r}: its SQL returned no value (NULL); give it a default, "
            "for example coalesce(max(ts), timestamp'1970-01-01')"
        )
    return str(row[0])


STATE_ZONE = "flare.state-zone"
# Spark reads these as moments relative to the run (`CAST('yesterday' AS TIMESTAMP)`): no replay point
RELATIVE_VALUES = ("now", "today", "yesterday", "tomorrow", "epoch")


def session_zone(spark: SparkSession) -> str:
    return str(spark.conf.get("spark.sql.session.timeZone"))


def _render(spark: SparkSession, value: str, kind: DataType, zone: str, what: str) -> str:
    """`value` as Spark renders a value of the key's type in the session's zone; `zone` is the zone
    the text was written in. A value that is not of that type is an error, not an empty run."""
    if isinstance(kind, StringType):
        return value
    text = value.strip()
    if text.lower() in RELATIVE_VALUES:
        raise ValueError(
            f"{what}: {value!r} is relative to the run, not a point to replay from; give a "
            f"{kind.simpleString()} such as '2024-01-31 00:00:00'"
        )
    if isinstance(kind, TimestampType) and zone != session_zone(spark) and not _has_zone(text):
        text = f"{text} {zone}"
    try:
        row = spark.range(1).select(F.lit(text).cast(kind).cast("string")).first()
    except SPARK_ERRORS:
        row = None
    if row is None or row[0] is None:
        raise ValueError(f"{what}: {value!r} is not a {kind.simpleString()} (the type of the key's SQL)")
    return str(row[0])


def _has_zone(text: str) -> bool:
    return bool(re.search(r"(Z|[+-]\d\d:?\d\d|[A-Za-z]+/[A-Za-z_]+|UTC|GMT)$", text))


def iceberg_appends(
    spark: SparkSession, item: Input, previous: RunState, reset: bool
) -> tuple[DataFrame, Progress]:
    """The rows of the snapshots appended since the committed one (all of them on a first run)."""
    assert item.incremental_read is not None
    table = item.address.table
    branch = str(item.options.get("branch") or "main")
    current, _ = refs.head(spark, table, branch)
    last_text = None if reset else previous.values.get(previous.source_key(item.name))
    last = int(last_text) if last_text else None
    key = previous.source_key(item.name)
    if current is None:
        return spark.table(table).limit(0), Progress(
            item.name, "snapshots", False, f"{table} has no snapshot"
        )
    props = {key: str(current)}
    if last == current:
        detail = f"no snapshot since {current}"
        return spark.table(table).limit(0), Progress(item.name, "snapshots", False, detail, props)
    full = spark.read.option("snapshot-id", str(current)).table(table)
    if last is None:
        detail = f"first run: all of snapshot {current}"
        return full, Progress(item.name, "snapshots", True, detail, props)
    rewrites = _rewrites_since(spark, table, current, last)
    if rewrites:
        what = ", ".join(rewrites[:3])
        if item.incremental_read.on_rewrite == "fail":
            raise ValueError(
                f"{table} changed by more than appends since snapshot {last} ({what}): an incremental read "
                "would miss them. Set incrementalRead.onRewrite: full-refresh to read everything, or reset "
                "the state"
            )
        detail = f"full refresh at {current}: {what} since {last}"
        return full, Progress(item.name, "snapshots", True, detail, props, refresh=True)
    frame = (
        spark.read.format("iceberg")
        .option("start-snapshot-id", str(last))
        .option("end-snapshot-id", str(current))
        .load(table)
    )
    return frame, Progress(item.name, "snapshots", True, f"snapshots after {last} up to {current}", props)


def _rewrites_since(spark: SparkSession, table: str, current: int, last: int) -> list[str]:
    """Snapshots between `last` and `current` that are not appends; ['...not an ancestor'] when
    `last` is gone from the history (expired, or the table was rolled back)."""
    ice = access.java_table(spark, table)
    found: list[str] = []
    snapshot = ice.snapshot(current)
    while snapshot is not None and int(snapshot.snapshotId()) != last:
        operation = str(snapshot.operation())
        if operation not in APPEND_ONLY:
            found.append(f"{operation} {snapshot.snapshotId()}")
        parent = snapshot.parentId()
        snapshot = ice.snapshot(parent) if parent is not None else None
    if snapshot is None:
        found.append(f"snapshot {last} is no longer an ancestor of {current}")
    return found


def new_files(
    ctx: RunContext, item: Input, previous: RunState, run_id: int
) -> tuple[DataFrame | None, Progress]:
    """Files of the input's folder that no committed run processed, a file being its path, size and
    modification time: a new file landing under a processed file's name is new. The list is written
    to a ledger before the output commits; a ledger entry of a run that never committed is dropped,
    and files of committed runs still waiting to be archived are moved first. `reset` reads every
    file present."""
    assert item.incremental_read is not None
    spark, depots, settings, reset = ctx.spark, ctx.depots, ctx.settings, ctx.request.reset
    root = Path(io.folder(item.address, depots, settings))
    archive = settings.resolve(item.incremental_read.archive) if item.incremental_read.archive else None
    ledger = ledger_path(settings, ctx.name, item.name)
    entries = [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []
    kept = [e for e in entries if e["run"] <= previous.run_id]
    if len(kept) != len(entries):
        _write_lines(ledger, kept)
    done = {f for e in kept for f in e.get("ids", [])}
    done_by_path = {f for e in kept if "ids" not in e for f in e["files"]}  # ledgers of older versions
    if archive is not None:
        archive_files(root, archive, sorted(done), done_by_path)
    present = {
        str(p.relative_to(root)): file_id(root, str(p.relative_to(root)))
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    }
    new = sorted(f for f, ident in present.items() if reset or (ident not in done and f not in done_by_path))
    reader = io.file_reader(spark, item, depots, settings).option("basePath", str(root))
    if not new:
        detail = f"no new files in {root}"
        empty = reader.load(str(root)).limit(0) if present else None
        return empty, Progress(item.name, "files", False, detail, folder=root, archive=archive)
    ids = [present[f] for f in new]
    _write_lines(ledger, [*kept, {"run": run_id, "files": new, "ids": ids}])
    loaded = reader.load([str(root / f) for f in new])
    detail = f"{len(new)} new file(s) in {root}"
    progress = Progress(item.name, "files", True, detail, files=ids, folder=root, archive=archive)
    return loaded, progress


def file_id(root: Path, rel: str) -> str:
    """A file as the ledger knows it: relative path, size and modification time (ns)."""
    stat = (root / rel).stat()
    return json.dumps([rel, stat.st_size, stat.st_mtime_ns])


def ledger_path(settings: Settings, job_name: str, item: str) -> Path:
    return state_file(settings, job_name).with_suffix("") / f"{item}.files.jsonl"


def _write_lines(path: Path, entries: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        fh.writelines(json.dumps(e) + "\n" for e in entries)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def archive_files(
    root: Path, archive: Path, ids: list[str], paths: set[str] | frozenset[str] = frozenset()
) -> int:
    """Moves processed files out of the landing folder, keeping their relative paths. A file is moved
    only while it is still the one processed (same path, size and modification time; `paths`: files
    known by path only); a name already in the archive gets a numbered suffix, never overwritten."""
    moved = 0
    wanted = [(json.loads(i)[0], i) for i in ids] + [(p, None) for p in sorted(paths)]
    for rel, ident in wanted:
        src = root / rel
        if not src.is_file() or (ident is not None and file_id(root, rel) != ident):
            continue
        dst = archive / rel
        n = 0
        while dst.exists():
            n += 1
            dst = (archive / rel).with_name(f"{src.stem}.{n}{src.suffix}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))
        moved += 1
    return moved
