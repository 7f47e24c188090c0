"""What a stream job has left to do, read without a JVM: its Structured Streaming checkpoint (plain
text logs), its landing folder, and the upstream table's current snapshot through pyiceberg.

A checkpoint holds `offsets/N` (what batch N reads, written when it starts), `commits/N` (written
once batch N is committed) and, for file sources, `sources/0/M[.compact]`: Spark's file log, the
files found at each listing. Its entry numbers are the source's own, not the query's batch ids (a
listing whose batch never started, cut by a kill, is read by the next batch with the new files):
`offsets/N` names the file-log entry batch N reads up to. Only batches with a commit count as done,
so a batch killed midway is still pending.

The sensor and the run see the landing folder through one function, `landing()`: which files the
next batch reads, and which ones the stream will not read, with why (a name landed again, a
subfolder or an age the manifest's options exclude).
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
from flare_assets.spec.address import parse_address
from flare_assets.spec.model import Job
from flare_assets.spec.streams import duration_ms, stream_file_options, stream_input, streaming
from flare_assets.workers import worker_alive, worker_identity


def checkpoint_dir(job: Job, name: str, settings: Settings) -> Path:
    """streaming.checkpointLocation (relative paths under FLARE_HOME; a dataos:// address is the
    folder FLARE_HOME/checkpoints/<depot>/<collection>/<dataset>), or FLARE_HOME/checkpoints/<job>."""
    location = streaming(job).checkpoint_location
    if location and location.startswith("dataos://"):
        address = parse_address(location)
        return settings.resolve("checkpoints") / address.depot / address.collection / address.dataset
    return settings.resolve(location) if location else settings.resolve("checkpoints") / name


def _batch_ids(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name.split(".")[0]) for p in folder.iterdir() if p.name.split(".")[0].isdigit())


def last_commit(checkpoint: Path) -> int | None:
    """The id of the last committed batch (None before the first commit)."""
    ids = _batch_ids(checkpoint / "commits")
    return ids[-1] if ids else None


def last_started(checkpoint: Path) -> int | None:
    """The id of the last batch whose offsets are written (it started; None before the first)."""
    ids = _batch_ids(checkpoint / "offsets")
    return ids[-1] if ids else None


def replayed_batch(checkpoint: Path) -> int | None:
    """The batch a restart runs again: the last one with offsets and no commit (None if none)."""
    started = _batch_ids(checkpoint / "offsets")
    if not started or started[-1] == last_commit(checkpoint):
        return None
    return started[-1]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines()[1:] if line.strip()]  # line 0: log version


def _file_log(checkpoint: Path) -> list[dict]:
    """Every entry of a file stream's file log: path (as Spark names it), timestamp (the file's
    modification time, ms) and batchId (the log's entry number)."""
    folder = checkpoint / "sources" / "0"
    return [
        json.loads(line)
        for path in (folder.iterdir() if folder.is_dir() else [])
        if not path.name.startswith(".")
        for line in _lines(path)
    ]


def _log_offset(checkpoint: Path, batch_id: int) -> int | None:
    """The file-log entry batch `batch_id` reads up to, from its offsets (None if not recorded)."""
    path = checkpoint / "offsets" / str(batch_id)
    lines = _lines(path) if path.exists() else []
    source = json.loads(lines[1]) if len(lines) > 1 else None  # line 0: batch metadata
    return int(source["logOffset"]) if isinstance(source, dict) and "logOffset" in source else None


def committed_files(checkpoint: Path) -> set[str]:
    """Local paths of the files committed batches read (file sources)."""
    done = last_commit(checkpoint)
    upto = _log_offset(checkpoint, done) if done is not None else None
    if upto is None:
        return set()
    return {local_path(e["path"]) for e in _file_log(checkpoint) if e.get("batchId", 0) <= upto}


def local_path(uri: str) -> str:
    """`file:/x` and `file:///x` (as Spark writes them) as the path `/x`; other URIs as they are."""
    parts = urlsplit(uri)
    return unquote(parts.path) if parts.scheme in ("", "file") else uri


def batch_files(checkpoint: Path, batch_id: int) -> tuple[list[str], float | None]:
    """The files one batch of a file stream read (as Spark names them) and the earliest arrival:
    the file-log entries after the previous batch's offset, up to this batch's."""
    end = _log_offset(checkpoint, batch_id)
    if end is None:
        return [], None
    start = _log_offset(checkpoint, batch_id - 1) if batch_id > 0 else -1
    start = end - 1 if start is None else start
    mine = [e for e in _file_log(checkpoint) if start < e.get("batchId", 0) <= end]
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
    """Data files in a landing folder, subfolders included, and their arrival (modification) times;
    Spark skips names starting with `_` or `.`, and so does this."""
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
class Landing:
    """A file stream's landing folder against its checkpoint: `pending` files the next batch reads
    (landed, or listed by a run that stopped before its batch committed), and `unread` ones the
    stream will not read, each with why."""

    pending: list[str] = field(default_factory=list)
    unread: dict[str, str] = field(default_factory=dict)
    pending_bytes: int = 0

    def notes(self) -> list[str]:
        return [f"{path}: {why}" for path, why in sorted(self.unread.items())]

    def add(self, path: str, size: int) -> None:
        self.pending.append(path)
        self.pending_bytes += size


def landing(folder: Path, checkpoint: Path, options: dict[str, str]) -> Landing:
    """What the stream makes of each landed file, by the rules of Spark's file source with the
    stream's options (lowercased keys): a path it has listed once is never read again, whatever
    lands under that name later (identity is the path; a different modification time means new
    content, reported); subfolders are read with `recursiveFileLookup` (else only `key=value`
    partition folders); with a `maxFileAge`, a file that much older than the newest file listed is
    skipped (the first listing takes every file)."""
    result = Landing()
    landed = landed_files(folder)
    log = _file_log(checkpoint)
    listed = {local_path(e["path"]): int(e["timestamp"]) for e in log}
    done = committed_files(checkpoint)
    recursive = options.get("recursivefilelookup", "false") == "true"
    max_age = options.get("maxfileage")
    oldest = max(listed.values()) - duration_ms(max_age) if max_age and listed else None
    for path in sorted(landed):
        info = os.stat(path)
        millis = info.st_mtime_ns // 1_000_000  # as Java's File.lastModified, which Spark logs
        if path in listed:
            if listed[path] != millis:
                result.unread[path] = (
                    "landed again under a name the stream has already read, with other content (modification "
                    "time changed); it is not read again: land new data under a new name"
                )
            elif path not in done:
                result.add(path, info.st_size)
            continue
        parts = Path(path).relative_to(folder).parts[:-1]
        if parts and not recursive and not all("=" in p for p in parts):
            result.unread[path] = (
                f"in the subfolder {'/'.join(parts)}, which the stream does not read with "
                "recursiveFileLookup: false (only key=value partition folders)"
            )
        elif oldest is not None and millis < oldest:
            result.unread[path] = (
                f"modified more than maxFileAge ({max_age}) before the newest file read, so Spark skips it; "
                "raise or remove maxFileAge to read it"
            )
        else:
            result.add(path, info.st_size)
    return result


def _runner_file(checkpoint: Path) -> Path:
    return checkpoint.parent / f".{checkpoint.name}.run"


def record_runner(checkpoint: Path, run_id: str) -> None:
    """Notes which run (its worker process) is processing the stream, for `runner_gone`."""
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    runner = {"run_id": run_id, "worker": worker_identity()}
    _runner_file(checkpoint).write_text(json.dumps(runner))


def runner_gone(checkpoint: Path, run_id: str) -> str | None:
    """Why run `run_id` is known to be dead (its worker process, on this host, no longer exists), or
    None: alive, or not known here (it never reached the stream, or runs on another host)."""
    try:
        runner = json.loads(_runner_file(checkpoint).read_text())
    except (OSError, ValueError):
        return None
    if runner.get("run_id") != run_id or worker_alive(runner.get("worker")) is not False:
        return None
    return f"its process ({runner['worker']}) is gone"


@dataclass
class PendingBatch:
    """New data a stream job has not committed yet; `key` names the batch (the sensor's run key)."""

    key: str
    description: str
    files: list[str] = field(default_factory=list)
    snapshot_id: int | None = None
    bytes: int | None = None  # the files' total size; None for a table's snapshot


def file_landing(job: Job, name: str, depots: DepotMap, settings: Settings) -> Landing:
    """`landing()` of a file stream's folder and checkpoint, with the options the stream reads with."""
    from flare_assets.engine.tables.io import folder as depot_folder

    folder = Path(depot_folder(stream_input(job).address, depots, settings))
    return landing(folder, checkpoint_dir(job, name, settings), stream_file_options(job, depots))


def stream_news(
    job: Job, name: str, depots: DepotMap, settings: Settings
) -> tuple[PendingBatch | None, list[str]]:
    """The batch a stream job has pending (None: nothing new), and the landed files it will not
    read, each with why."""
    checkpoint = checkpoint_dir(job, name, settings)
    address = stream_input(job).address
    if depots.is_iceberg(address):
        from flare_assets.catalog import load_catalog

        table = load_catalog(address.depot, settings).load_table(address.identifier)
        snapshot = table.current_snapshot()
        done = (committed_offset(checkpoint) or {}).get("snapshot_id")
        if snapshot is None or snapshot.snapshot_id == done:
            return None, []
        batch = PendingBatch(
            key=f"{name}:snapshot:{snapshot.snapshot_id}",
            description=f"{address.table} up to snapshot {snapshot.snapshot_id}",
            snapshot_id=snapshot.snapshot_id,
        )
        return batch, []
    found = file_landing(job, name, depots, settings)
    new = found.pending
    if not new:
        return None, found.notes()
    digest = hashlib.sha1("\n".join(new).encode()).hexdigest()[:16]
    batch = PendingBatch(
        key=f"{name}:files:{len(new)}:{digest}",
        description=f"{len(new)} new file(s): {', '.join(Path(p).name for p in new[:5])}"
        + (" ..." if len(new) > 5 else ""),
        files=new,
        bytes=found.pending_bytes,
    )
    return batch, found.notes()
