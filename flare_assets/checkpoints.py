"""What a stream job has left to do, read without a JVM: its Structured Streaming checkpoint (plain
text logs), its landing folder, and the upstream table's current snapshot through pyiceberg.

A checkpoint holds `offsets/N` (what batch N reads, written when it starts), `commits/N` (written
once batch N is committed) and, for file sources, `sources/0/N[.compact]` (the files each batch
read). Only batches with a commit count as done, so a batch killed midway is still pending.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flare_assets.depots import DepotMap
from flare_assets.settings import Settings
from flare_assets.spec.model import Job
from flare_assets.spec.streams import stream_input, streaming


def checkpoint_dir(job: Job, name: str, settings: Settings) -> Path:
    """streaming.checkpointLocation (relative paths under FLARE_HOME), or FLARE_HOME/checkpoints/<job>."""
    location = streaming(job).checkpoint_location
    return settings.resolve(location) if location else settings.resolve("checkpoints") / name


def _batch_ids(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name.split(".")[0]) for p in folder.iterdir() if p.name.split(".")[0].isdigit())


def last_commit(checkpoint: Path) -> int | None:
    """The id of the last committed batch (None before the first commit)."""
    ids = _batch_ids(checkpoint / "commits")
    return ids[-1] if ids else None


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines()[1:] if line.strip()]  # line 0: log version


def committed_files(checkpoint: Path) -> set[str]:
    """Local paths of the files committed batches read (file sources)."""
    done = last_commit(checkpoint)
    folder = checkpoint / "sources" / "0"
    if done is None or not folder.is_dir():
        return set()
    seen: set[str] = set()
    for path in folder.iterdir():
        if path.name.startswith("."):
            continue
        for line in _lines(path):
            entry = json.loads(line)
            if entry.get("batchId", 0) <= done:
                seen.add(local_path(entry["path"]))
    return seen


def local_path(uri: str) -> str:
    """`file:/x` and `file:///x` (as Spark writes them) as the path `/x`; other URIs as they are."""
    parts = urlsplit(uri)
    return unquote(parts.path) if parts.scheme in ("", "file") else uri


def batch_files(checkpoint: Path, batch_id: int) -> tuple[list[str], float | None]:
    """The files one batch of a file stream read (as Spark names them) and the earliest arrival."""
    folder = checkpoint / "sources" / "0"
    entries = [
        json.loads(line)
        for path in (folder.iterdir() if folder.is_dir() else [])
        if not path.name.startswith(".")
        for line in _lines(path)
    ]
    mine = [e for e in entries if e.get("batchId") == batch_id]
    arrived = min((e["timestamp"] for e in mine), default=None)
    return sorted({local_path(e["path"]) for e in mine}), arrived / 1000 if arrived is not None else None


def committed_offset(checkpoint: Path) -> dict | None:
    """The source offset the last committed batch read up to (for Iceberg: its snapshot id)."""
    done = last_commit(checkpoint)
    if done is None:
        return None
    lines = _lines(checkpoint / "offsets" / str(done))
    return json.loads(lines[1]) if len(lines) > 1 else None  # line 1: batch metadata, then the sources


def landed_files(folder: Path) -> dict[str, float]:
    """Data files in a landing folder and their arrival (modification) times; Spark skips names
    starting with `_` or `.`, and so does this."""
    found: dict[str, float] = {}
    if not folder.is_dir():
        return found
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        for name in files:
            if not name.startswith(("_", ".")):
                path = os.path.join(root, name)
                found[path] = os.stat(path).st_mtime
    return found


@dataclass
class PendingBatch:
    """New data a stream job has not committed yet; `key` names the batch (the sensor's run key)."""

    key: str
    description: str
    files: list[str] = field(default_factory=list)
    snapshot_id: int | None = None


def pending_batch(job: Job, name: str, depots: DepotMap, settings: Settings) -> PendingBatch | None:
    from flare_assets.engine.io import folder as depot_folder

    checkpoint = checkpoint_dir(job, name, settings)
    item = stream_input(job)
    address = item.address
    if depots.depots[address.depot].type == "iceberg":
        from flare_assets.catalog import load_catalog

        table = load_catalog(address.depot, settings).load_table(address.identifier)
        snapshot = table.current_snapshot()
        done = (committed_offset(checkpoint) or {}).get("snapshot_id")
        if snapshot is None or snapshot.snapshot_id == done:
            return None
        return PendingBatch(
            key=f"{name}:snapshot:{snapshot.snapshot_id}",
            description=f"{address.table} up to snapshot {snapshot.snapshot_id}",
            snapshot_id=snapshot.snapshot_id,
        )
    landed = landed_files(Path(depot_folder(address, depots, settings)))
    new = sorted(set(landed) - committed_files(checkpoint))
    if not new:
        return None
    digest = hashlib.sha1("\n".join(new).encode()).hexdigest()[:16]
    return PendingBatch(
        key=f"{name}:files:{len(new)}:{digest}",
        description=f"{len(new)} new file(s): {', '.join(Path(p).name for p in new[:5])}"
        + (" ..." if len(new) > 5 else ""),
        files=new,
    )
