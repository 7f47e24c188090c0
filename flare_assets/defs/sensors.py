"""Sensors: each stream job's new-data sensor, the table health sensor, and the one that fails runs
whose process died (defs/executor.py frees their pool slots).

A stream sensor looks without a JVM (new landing files against the checkpoint's committed file log,
or the upstream table's current snapshot through pyiceberg), names the batch in the run key, and
launches nothing while a run of the job is in flight."""

from functools import cache
from typing import TYPE_CHECKING

from dagster import (
    AssetObservation,
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from flare_assets.defs.executor import WORKER_TAG, reap
from flare_assets.defs.location import Location
from flare_assets.defs.runs import IN_FLIGHT
from flare_assets.defs.stream_assets import BATCH_TAG, JVM_TAG, QUICK_BATCH_BYTES, QUICK_JVM, STREAM_TAG
from flare_assets.defs.tables import MaintainedTable, health_metadata, maintenance_run_config, table_health
from flare_assets.engine.maintenance.health import needed
from flare_assets.engine.stream.checkpoints import checkpoint_dir, runner_gone, stream_news
from flare_assets.settings import Settings
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.maintenance import MAINTENANCE_KINDS
from flare_assets.spec.streams import streaming

if TYPE_CHECKING:  # pyiceberg loads only when health is read, not in every run process
    from pyiceberg.catalog import Catalog


@cache  # one object for every Definitions built here: merged definitions keep one sensor
def dead_runs_sensor() -> SensorDefinition:
    @sensor(
        name="flare_dead_runs",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Fails STARTED runs whose worker process on this host is gone (kill -9, a crash) and "
        "frees the pool slots they held",
    )
    def flare_dead_runs(context: SensorEvaluationContext) -> SkipReason:
        instance = context.instance
        started = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        suspects = {r.run_id for r in started if WORKER_TAG in r.tags}
        if instance.event_log_storage.supports_global_concurrency_limits:
            suspects |= instance.event_log_storage.get_concurrency_run_ids()
        done = [m for m in (reap(instance, rid) for rid in sorted(suspects)) if m]
        for line in done:
            context.log.warning(line)
        return SkipReason("; ".join(done) or f"{len(started)} started run(s), none dead")

    return flare_dead_runs


HEALTH_INTERVAL_S = 300


def health_tick(
    tables: list[MaintainedTable], settings: Settings | None = None
) -> tuple[list[AssetObservation], list[RunRequest]]:
    """Reads every table's health (pyiceberg, no JVM); observations for all, runs for those in need.
    A run's key is the table's snapshot, so one state of a table launches one run."""
    from pyiceberg.exceptions import NoSuchTableError

    observations, runs = [], []
    catalogs: dict[str, Catalog] = {}
    for table in tables:
        if not table.settings.health:
            continue
        try:
            health = table_health(table, catalogs, settings)
        except NoSuchTableError:  # not written yet: no health to observe
            continue
        needs = needed(health, table.settings.thresholds)
        observations.append(
            AssetObservation(asset_key=table.asset_key, metadata=health_metadata(health, needs))
        )
        if needs:
            kinds = [k for k in MAINTENANCE_KINDS if k in needs]
            runs.append(
                RunRequest(
                    run_key=f"{table.address.table}:{health.snapshot_id}:{','.join(kinds)}",
                    job_name=table.job_name,
                    run_config=maintenance_run_config(
                        table.job_name, tables=[table.address.table], kinds=kinds, targeted=True
                    ),
                    tags={"flare/health": ",".join(kinds), "flare/table": table.address.table},
                )
            )
    return observations, runs


def health_sensor(
    tables: list[MaintainedTable],
    jobs: list[JobDefinition],
    settings: Settings | None = None,
    name: str = "flare_table_health",
) -> SensorDefinition:
    @sensor(
        name=name,
        jobs=jobs,
        minimum_interval_seconds=HEALTH_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description="Observes every lakehouse table's health and launches the maintenance it needs",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        observations, runs = health_tick(tables, settings)
        if not observations:
            return SkipReason("no lakehouse table has been written yet")
        return SensorResult(run_requests=runs, asset_events=observations)

    return _sensor


def _unread(notes: list[str]) -> str:
    """Landed files the stream will not read, for a tick's message."""
    if not notes:
        return ""
    return (
        f"; {len(notes)} landed file(s) will not be read: "
        + "; ".join(notes[:3])
        + (" ..." if len(notes) > 3 else "")
    )


def stream_sensor(lj: LoadedJob, location: Location) -> SensorDefinition:
    depots, settings, keys = location.depots, location.settings, location.keys
    job = lj.dag_job.job
    mode = streaming(job)
    selection = [keys(o.address) for o in job.outputs]
    what = "starts the long-running run when data arrives" if mode.continuous else "launches a run per batch"

    @sensor(
        name=f"{lj.name}_stream",
        minimum_interval_seconds=max(1, round(mode.interval_s)) if not mode.continuous else 30,
        asset_selection=selection,
        description=f"{lj.label}: looks for new data and {what}",
    )
    def _tick(context: SensorEvaluationContext) -> RunRequest | SkipReason:
        batch, unread = stream_news(job, lj.name, depots, settings)
        if batch is None:
            return SkipReason("no new data since the last committed batch" + _unread(unread))
        in_flight = context.instance.get_run_records(
            RunsFilter(tags={STREAM_TAG: lj.name}, statuses=IN_FLIGHT), limit=1
        )
        run_key = batch.key
        if in_flight:
            run = in_flight[0].dagster_run
            gone = runner_gone(checkpoint_dir(job, lj.name, settings), run.run_id)
            if run.status != DagsterRunStatus.STARTED or gone is None:
                return SkipReason(
                    f"run {run.run_id} is processing this stream; {batch.description} waits for it"
                )
            # the run died without ending (its process was killed): fail it, and resume the stream
            # from its checkpoint under a new run key (its own was used by the dead run)
            context.instance.report_run_failed(run, f"{lj.name}: run {run.run_id} died: {gone}")
            context.log.warning(f"run {run.run_id} died ({gone}); marked failed, the stream resumes")
            run_key = f"{batch.key}:resumed:{run.run_id[:8]}"
        tags = {STREAM_TAG: lj.name, BATCH_TAG: batch.description[:200]}
        if batch.bytes is not None and batch.bytes <= QUICK_BATCH_BYTES:
            tags[JVM_TAG] = QUICK_JVM
        return RunRequest(run_key=run_key, asset_selection=selection, tags=tags)

    return _tick
