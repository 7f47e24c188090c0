"""An output's partition layout: the run_id column filled in, and the partitions as stored, listed
from a folder of files or an Iceberg table."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from flare_assets.engine.tables.access import java_table
from flare_assets.spec.housekeeping import RUN_ID
from flare_assets.spec.model import Output

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Spark's folder name for a null partition value


def with_run_id(df: DataFrame, output: Output, run_number: int) -> DataFrame:
    """A partition column named run_id that the result lacks is the run's number."""
    options = output.options
    spec = options.partition_fields or []
    named = [*(options.partition_by or []), *(f.column for f in spec)]
    present = {c.lower() for c in df.columns}
    if any(c.lower() == RUN_ID for c in named) and RUN_ID not in present:
        return df.withColumn(RUN_ID, F.lit(run_number).cast("int"))
    return df


@dataclass
class Partition:
    """One partition: its values by column (None for null), and for files its folder and data files."""

    values: dict[str, str | None]
    path: str = ""
    files: list[str] = field(default_factory=list)
    compacted: bool = False  # files: a marker lists exactly the files present

    def label(self) -> str:
        return "/".join(f"{k}={v}" for k, v in self.values.items())


class FileSystem:
    """The few file operations housekeeping needs, relative to one dataset folder. File depots are
    local folders (or mounts): renames are atomic, and a data file's checksum (`.NAME.crc`, written
    by Spark) moves with it."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def glob(self, pattern: str) -> list[str]:
        """Paths matching `pattern` (relative to the root), relative to the root."""
        return [str(p.relative_to(self.root)) for p in self.root.glob(pattern)]

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def mkdirs(self, rel: str) -> None:
        (self.root / rel).mkdir(parents=True, exist_ok=True)

    def rename(self, src: str, dst: str, make_parent: bool = True) -> None:
        """Atomic; refuses to replace what is at `dst`."""
        source, target = self.root / src, self.root / dst
        if make_parent:
            target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise OSError(f"cannot move {source} to {target}: it exists")
        os.rename(source, target)
        crc = source.parent / f".{source.name}.crc"
        if crc.exists():
            os.rename(crc, target.parent / f".{target.name}.crc")

    def delete(self, rel: str) -> None:
        path = self.root / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def remove_if_empty(self, rel: str) -> bool:
        path = self.root / rel
        if rel and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
            return True
        return False

    def size(self, rel: str) -> int:
        return sum(f.stat().st_size for f in (self.root / rel).iterdir() if f.is_file())

    def write_json(self, rel: str, value: Any) -> None:
        """Written under a temporary name, synced, then renamed: readers see all of it or nothing."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(path.name + ".tmp")
        with temp.open("w") as fh:
            json.dump(value, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)

    def read_json(self, rel: str) -> Any:
        return json.loads((self.root / rel).read_text())


def partition_dir(values: dict[str, str | None]) -> str:
    """The folder of a partition as Spark writes it (`run_id=5/reporting_unit=rp01`)."""
    return "/".join(f"{k}={_escape(v)}" for k, v in values.items())


# Characters Spark escapes in partition folder names (ExternalCatalogUtils.charToEscape).
_TO_ESCAPE = {chr(c) for c in range(1, 32)} | set("\"#%'*/:=?\\\x7f{[]^")


def _escape(value: str | None) -> str:
    if value is None:
        return NULL_PARTITION
    return "".join(f"%{ord(c):02X}" if c in _TO_ESCAPE else c for c in value)


def _unescape(text: str) -> str | None:
    if text == NULL_PARTITION:
        return None
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


COMPACTED = "_FLARE_COMPACTED"  # in a partition folder: the data files its compaction produced


def file_partitions(fs: FileSystem, columns: list[str]) -> list[Partition]:
    """Partitions of a folder laid out `col=value/...` in `columns` order, with their data files
    (hidden names, `_` and `.`, are markers and checksums, not data)."""
    pattern = "/".join(f"{c}=*" for c in columns) + "/*"
    found: dict[str, Partition] = {}
    markers: set[str] = set()
    for rel in fs.glob(pattern):
        folder, name = rel.rsplit("/", 1)
        if folder not in found:
            parts = folder.split("/")
            values = {c: _unescape(p.split("=", 1)[1]) for c, p in zip(columns, parts, strict=True)}
            found[folder] = Partition(values=values, path=folder)
        if name == COMPACTED:
            markers.add(folder)
        elif not name.startswith(("_", ".")):
            found[folder].files.append(name)
    for folder in markers:
        part = found[folder]
        listed = fs.read_json(f"{folder}/{COMPACTED}").get("files", [])
        part.compacted = sorted(listed) == sorted(part.files)
    return sorted((p for p in found.values() if p.files), key=lambda p: p.path)


def iceberg_partitions(spark: SparkSession, table: str) -> tuple[list[str], list[Partition], int]:
    """The table's identity partition columns, its partitions, and its data file count (one query on
    the `partitions` metadata table)."""
    spec = java_table(spark, table).spec()
    fields = [
        (str(f.name()), str(spec.schema().findColumnName(f.sourceId())))
        for f in spec.fields()
        if f.transform().isIdentity()
    ]
    if not fields:
        return [], [], 0
    rows = spark.sql(
        "SELECT "
        + ", ".join(f"CAST(partition.`{name}` AS STRING) AS `{col}`" for name, col in fields)
        + f", file_count FROM {table}.partitions"
    ).collect()
    columns = [col for _, col in fields]
    parts = [Partition(values={c: r[c] for c in columns}) for r in rows]
    return columns, parts, sum(int(r["file_count"]) for r in rows)
