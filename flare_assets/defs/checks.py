"""Data-quality jobs as Dagster asset checks on the datasets they check, and their schedules.

A job with inputs and assertions and no outputs becomes one multi_asset_check: each assertion is a
check on the asset of the input it names (the asset that writes the dataset, or the dataset's
external source asset). A workflow with a cron schedule gets a job of its checks on that schedule."""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetSelection,
    ScheduleDefinition,
    define_asset_job,
    multi_asset_check,
)

from flare_assets.defs.jobs import AssetJob
from flare_assets.defs.keys import DEFAULT_KEYS, AssetKeys, dagster_name
from flare_assets.defs.location import Location
from flare_assets.defs.metadata import check_result
from flare_assets.defs.resources import SparkResource
from flare_assets.defs.schedules import workflow_schedule
from flare_assets.engine.batch.quality import named_assertions, run_checks
from flare_assets.engine.batch.tuning import job_conf
from flare_assets.spec.loader import LoadedJob


def is_quality_job(lj: LoadedJob) -> bool:
    job = lj.dag_job.job
    return not job.outputs and bool(job.assertions)


def _check_keys(lj: LoadedJob, keys: AssetKeys) -> dict[AssetCheckKey, tuple[str, str]]:
    """Each check's key -> (input name, check name)."""
    job = lj.dag_job.job
    return {
        AssetCheckKey(keys(item.address), check): (item.name, check)
        for item in job.inputs
        for check, _ in named_assertions(job, item.name)
    }


def quality_checks(lj: LoadedJob, location: Location) -> AssetChecksDefinition:
    depots, settings, keys = location.depots, location.settings, location.keys
    job = lj.dag_job.job
    label = lj.label
    specs = [
        AssetCheckSpec(
            name=check,
            asset=keys(item.address),
            blocking=a.blocking,
            description=a.description or "; ".join(a.tests) + (f" on {a.column}" if a.column else ""),
            metadata={"manifest": str(lj.file), "job": lj.dag_job.name, "dataset": item.dataset},
        )
        for item in job.inputs
        for check, a in named_assertions(job, item.name)
    ]
    check_keys = _check_keys(lj, keys)
    by_input = {item.name: keys(item.address) for item in job.inputs}

    @multi_asset_check(
        name=f"{lj.name}_checks",
        specs=specs,
        can_subset=True,
        description=lj.dag_job.title or lj.dag_job.description or f"data-quality job {label}",
        pool=lj.dag_job.pool,
    )
    def _check(context: AssetCheckExecutionContext, spark: SparkResource) -> Iterator[AssetCheckResult]:
        stack = lj.dag_job.spec.stack_spec
        session, ignored = spark.session_for(stack.static_conf(), None, settings, depots)
        runtime = {k: v for k, v in stack.conf().items() if k not in stack.static_conf()}
        only = {check_keys[k] for k in context.selected_asset_check_keys}
        with job_conf(session, runtime) as static:
            for key in ignored + static:
                context.log.warning(f"{key} is a static Spark conf; the run's JVM was started without it")
            results = run_checks(session, job, depots, settings, name=label, only=only)
        for checked in results:
            for result in checked.checks:
                yield check_result(by_input[checked.input], result)

    return _check


def quality_jobs(
    jobs: list[LoadedJob], keys: AssetKeys = DEFAULT_KEYS
) -> tuple[list[AssetJob], list[ScheduleDefinition]]:
    """A job per workflow of its data-quality checks (`<workflow>_checks_job`), and a schedule of it
    on the workflow's cron schedule when it has one."""
    asset_jobs: list[AssetJob] = []
    out: list[ScheduleDefinition] = []
    for manifest in {lj.manifest.name: lj.manifest for lj in jobs}.values():
        checks = [
            k for lj in jobs if lj.manifest is manifest and is_quality_job(lj) for k in _check_keys(lj, keys)
        ]
        if not checks:
            continue
        asset_job = define_asset_job(
            dagster_name(manifest.name) + "_checks_job",
            selection=AssetSelection.checks(*checks),
        )
        asset_jobs.append(asset_job)
        if manifest.workflow.schedule is not None:
            out.append(workflow_schedule(manifest.workflow.schedule, asset_job))
    return asset_jobs, out
