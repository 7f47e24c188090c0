"""Builds the Definitions for a set of manifests and a depot map."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import (
    Definitions,
)

from flare_assets.catalog import table_exists
from flare_assets.defs.assets import job_assets, source_specs
from flare_assets.defs.broken import broken_assets
from flare_assets.defs.checks import is_quality_job, quality_checks, quality_jobs
from flare_assets.defs.executor import flare_executor
from flare_assets.defs.jobs import housekeeping_jobs, partitioned_job
from flare_assets.defs.keys import DEFAULT_KEYS, AssetKeys
from flare_assets.defs.location import Location
from flare_assets.defs.maintenance import maintenance_definitions
from flare_assets.defs.resources import SPARK
from flare_assets.defs.schedules import schedules
from flare_assets.defs.sensors import dead_runs_sensor, stream_sensor
from flare_assets.defs.stream_assets import stream_assets
from flare_assets.depots import DepotMap, load_depots
from flare_assets.settings import Settings
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import Loaded, LoadedJob, load_manifests
from flare_assets.spec.streams import is_stream_job

log = logging.getLogger("flare_assets")


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused: building the definitions of hundreds of manifests
    allocates millions of objects that live as long as the process, and the collector would walk
    them again and again while they are made (a quarter of the load time with 500 manifests). The
    collector resumes afterwards, so cyclic garbage made meanwhile is collected then."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_definitions(
    settings: Settings | None = None,
    pipelines: list[Path] | None = None,
    keys: AssetKeys = DEFAULT_KEYS,
    prefix: str = "flare",
) -> Definitions:
    """Every valid manifest's definitions; a broken manifest is logged and shows as one failing asset
    (FLARE_STRICT=true fails the whole load instead). `keys` names each dataset's asset (a
    component's translation may rename them); `prefix` names the maintenance jobs and health sensor,
    so several component instances share a code location."""
    with no_cyclic_gc():
        return _build(settings, pipelines, keys, prefix)


def _load(roots: list[Path], depots: DepotMap, settings: Settings) -> Loaded:
    """The manifests under `roots`; what they ignore is logged as warnings, their problems as errors
    (FLARE_STRICT=true raises them instead)."""
    loaded = load_manifests(roots, depots, lambda t: table_exists(t, settings), settings.manifest_cache)
    for line in loaded.ignored:
        log.warning(line)
    if loaded.broken and settings.strict:
        raise ManifestError(loaded.problems)
    for line in loaded.problems:
        log.error(line)
    return loaded


def _build(
    settings: Settings | None, pipelines: list[Path] | None, keys: AssetKeys, prefix: str
) -> Definitions:
    settings = settings or Settings.from_env()
    depots = load_depots(settings.depots)
    roots = pipelines or [settings.pipelines]
    loaded = _load(roots, depots, settings)
    jobs = loaded.jobs
    location = Location(depots, settings, keys)
    maintenance = maintenance_definitions(jobs, location, prefix)
    writers = [lj for lj in jobs if lj.dag_job.job.outputs]
    streams = [lj for lj in writers if is_stream_job(lj.dag_job.job)]
    check_jobs, check_schedules = quality_jobs(jobs, keys)
    workflows: dict[str, list[LoadedJob]] = {}
    for lj in jobs:
        workflows.setdefault(lj.manifest.name, []).append(lj)
    # runs get `settings` through the definitions' closures, not from the environment: two sets of
    # definitions built with different settings coexist in one code location
    return Definitions(
        assets=[
            *source_specs(jobs, location),
            *(job_assets(lj, workflows[lj.manifest.name], location) for lj in writers if lj not in streams),
            *(stream_assets(lj, location) for lj in streams),
            *broken_assets(loaded.broken, roots, loaded.workflows),
        ],
        asset_checks=[quality_checks(lj, location) for lj in jobs if is_quality_job(lj)],
        schedules=schedules(writers, keys) + maintenance["schedules"] + check_schedules,
        jobs=[
            *(partitioned_job(lj, keys) for lj in writers if lj.dag_job.job.partitions),
            *housekeeping_jobs(writers, location),
            *maintenance["jobs"],
            *check_jobs,
        ],
        sensors=[
            *maintenance["sensors"],
            *(stream_sensor(lj, location) for lj in streams),
            dead_runs_sensor(),
        ],
        resources={"spark": SPARK},
        # Spark steps share the run's one JVM: a process per step would start a JVM per step.
        # The executor also reports pool waits and frees slots held by dead runs (defs/executor.py).
        executor=flare_executor,
    )
