"""Schedules: a workflow's `schedule`, table maintenance's crons, action jobs' and checks' schedules."""

from collections.abc import Callable
from datetime import UTC, datetime

from dagster import (
    JobDefinition,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from flare_assets.defs.jobs import AssetJob, partitioned_job
from flare_assets.defs.keys import DEFAULT_KEYS, AssetKeys, dagster_name
from flare_assets.defs.runs import IN_FLIGHT
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.model import TIME_WINDOWS, Schedule


def schedules(jobs: list[LoadedJob], keys: AssetKeys = DEFAULT_KEYS) -> list[ScheduleDefinition]:
    """workflow.schedule.cron -> one schedule per workflow over its unpartitioned assets; a job with
    time-window partitions gets a schedule that runs each partition once it closes."""
    out: list[ScheduleDefinition] = []
    for manifest in {lj.manifest.name: lj.manifest for lj in jobs}.values():
        if manifest.workflow.schedule is None:
            continue
        selection = [
            keys(o.address) for d in manifest.workflow.dag if not d.job.partitions for o in d.job.outputs
        ]
        if not selection:
            continue
        asset_job = define_asset_job(f"{dagster_name(manifest.name)}_job", selection=selection)
        out.append(workflow_schedule(manifest.workflow.schedule, asset_job))
    for lj in jobs:
        partitions = lj.dag_job.job.partitions
        if partitions and all(d.type in TIME_WINDOWS for d in partitions.dimensions):
            out.append(build_schedule_from_partitioned_job(partitioned_job(lj, keys)))
    return out


def workflow_schedule(schedule: Schedule, asset_job: AssetJob) -> ScheduleDefinition:
    """A Flare `workflow.schedule` for one asset job: its cron in its time zone, with its policy."""
    return ScheduleDefinition(
        name=f"{asset_job.name}_schedule",
        job=asset_job,
        cron_schedule=schedule.cron,
        execution_timezone=schedule.timezone or "UTC",
        execution_fn=schedule_tick(schedule, asset_job.name),
    )


def schedule_tick(
    schedule: Schedule, job_name: str
) -> Callable[[ScheduleEvaluationContext], RunRequest | SkipReason]:
    """A tick runs the workflow unless it is past `endOn`, or a run is in flight and the policy is
    Forbid."""

    def evaluate(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        now = context.scheduled_execution_time or datetime.now(UTC)
        if schedule.end_on is not None and now > schedule.end_on:
            return SkipReason(f"the schedule ended on {schedule.end_on.isoformat()} (endOn)")
        if schedule.concurrency_policy == "Forbid":
            busy = context.instance.get_run_records(
                RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=1
            )
            if busy:
                return SkipReason(
                    f"run {busy[0].dagster_run.run_id} is in flight (concurrencyPolicy: Forbid)"
                )
        return RunRequest()

    return evaluate


def action_schedules(lj: LoadedJob, job_def: JobDefinition) -> list[ScheduleDefinition]:
    schedule = lj.manifest.workflow.schedule
    if schedule is None:
        return []
    return [
        ScheduleDefinition(
            name=f"{lj.name}_schedule",
            job=job_def,
            cron_schedule=schedule.cron,
            execution_timezone=schedule.timezone or "UTC",
        )
    ]
