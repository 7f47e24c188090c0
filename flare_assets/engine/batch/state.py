"""Run ids and incremental state, kept with the data they describe.

For Iceberg outputs they ride in the snapshot summary of the very commit that writes the rows
(`flare.run-id`, `flare.state.<input>.<key>`, `flare.source.<input>`), so a failed run never
advances them and a successful one always does. Jobs that write only files keep the same keys in
FLARE_HOME/state/<job>.json, replaced after their writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession

from flare_assets.engine.tables import access
from flare_assets.settings import Settings
from flare_assets.spec.model import Job

if TYPE_CHECKING:
    from flare_assets.engine.batch.context import RunContext

RUN_ID = "flare.run-id"
PREFIX = "flare."
MAX_ANCESTORS = 10_000


@dataclass
class RunState:
    """The last committed run: its integer id (0 before the first) and its flare.* values."""

    run_id: int = 0
    values: dict[str, str] = field(default_factory=dict)
    where: str = ""

    def state_key(self, item: str, key: str) -> str:
        return f"{PREFIX}state.{item}.{key}"

    def source_key(self, item: str) -> str:
        return f"{PREFIX}source.{item}"


def committed(ctx: RunContext) -> RunState:
    """Read from the first output that has a committed run (they are written with the same values)."""
    spark, job, depots = ctx.spark, ctx.job, ctx.depots
    iceberg_outputs = [o for o in job.outputs if depots.is_iceberg(o.address)]
    for output in iceberg_outputs:
        table = output.address.table
        if not spark.catalog.tableExists(table):
            continue
        found = last_flare_summary(spark, table, output.options.branch or "main")
        if found is not None:
            return RunState(int(found[RUN_ID]), found, f"{table} snapshot summary")
    if iceberg_outputs:
        return RunState()
    path = state_file(ctx.settings, ctx.name)
    if path.exists():
        values = json.loads(path.read_text())
        return RunState(int(values.get(RUN_ID, 0)), values, str(path))
    return RunState()


def last_flare_summary(spark: SparkSession, table: str, branch: str) -> dict[str, str] | None:
    """The flare.* keys of the newest snapshot on the branch that has them; maintenance commits
    (compaction, expiry) carry none and are walked past."""
    ice = access.java_table(spark, table)
    ref = ice.refs().get(branch)
    snapshot = ice.snapshot(ref.snapshotId()) if ref is not None else None
    for _ in range(MAX_ANCESTORS):
        if snapshot is None:
            return None
        summary = snapshot.summary()
        if summary.containsKey(RUN_ID):
            return {str(k): str(summary.get(k)) for k in summary.keySet() if str(k).startswith(PREFIX)}
        parent = snapshot.parentId()
        snapshot = ice.snapshot(parent) if parent is not None else None
    return None


def state_file(settings: Settings, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return settings.home / "state" / f"{safe}.json"


def save_file_state(settings: Settings, name: str, values: dict[str, str]) -> None:
    """Atomic replace: a reader sees the old state or the new one."""
    path = state_file(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=1, sort_keys=True))
    os.replace(tmp, path)


@dataclass
class StateRequest:
    """A replay's say over the state: start from scratch (`reset`), or from chosen key values
    (`values`, by `key` or `input.key`)."""

    reset: bool = False
    values: dict[str, str] = field(default_factory=dict)

    def for_input(self, item: str) -> dict[str, str]:
        plain = {k: v for k, v in self.values.items() if "." not in k}
        scoped = {k.split(".", 1)[1]: v for k, v in self.values.items() if k.startswith(item + ".")}
        return {**plain, **scoped}


def request_problems(job: Job, request: StateRequest, only: set[str] | None = None) -> list[str]:
    """What is wrong with a replay's config for this job, checked before any work: state keys name
    keys of the job's incremental blocks (`key` or `input.key`), and replays stay exact. A `reset`
    rebuilds append outputs (the run replaces them, as a first run would), so it is refused when a
    file input's processed files were archived (they could not be read again); chosen values would
    append again rows earlier runs wrote, so they are refused for append outputs."""
    if not request.reset and not request.values:
        return []
    incremental = [i for i in job.inputs if i.incremental or i.incremental_read]
    if not incremental:
        return ["the job has no incremental input, so state and reset_state do not apply"]
    blocks = {i.name: [k.name for k in i.incremental.keys] for i in job.inputs if i.incremental}
    allowed = sorted({k for keys in blocks.values() for k in keys})
    allowed += [f"{i}.{k}" for i, keys in blocks.items() for k in keys]
    listed = ", ".join(allowed) or "(none: no input has an incremental block)"
    problems = []
    for name in request.values:
        scope, _, key = name.rpartition(".")
        if scope and scope not in blocks:
            problems.append(
                f"state.{name}: {scope!r} is no input with an incremental block; allowed keys: {listed}"
            )
        elif key not in (blocks[scope] if scope else allowed):
            problems.append(f"state.{name}: {key!r} is no incremental key; allowed: {listed}")
    outputs = [o for o in job.outputs if only is None or o.name in only]
    appends = [o.name for o in outputs if o.options.write_mode == "append"]
    if request.values and appends:
        problems.append(
            f"state: replaying from chosen values into append output(s) {', '.join(appends)} would append "
            "again the rows earlier runs wrote from those values on; use reset_state: true (the run "
            "rebuilds the outputs from scratch), or an overwrite or merge output"
        )
    archived = [i.name for i in incremental if i.incremental_read and i.incremental_read.archive]
    if request.reset and archived and appends:
        problems.append(
            f"reset_state: input(s) {', '.join(archived)} moved their processed files to the archive, so "
            f"a rebuild of {', '.join(appends)} could not read them again"
        )
    return problems
