"""One multi_asset per Flare job: its outputs are the assets, computed by one Spark run of the job."""

import inspect
import re
from collections.abc import Callable, Iterator
from typing import TypeVar

from dagster import (
    AssetCheckKey,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    Config,
    MaterializeResult,
    MultiPartitionKey,
    multi_asset,
)
from pyspark.sql import SparkSession

from flare_assets.defs.config import config_fields, op_config
from flare_assets.defs.keys import AssetKeys, dagster_name
from flare_assets.defs.location import Location
from flare_assets.defs.metadata import (
    check_result,
    dagster_tags,
    output_metadata,
    partition_label,
    partition_metadata,
    run_metadata,
    skipped_metadata,
)
from flare_assets.defs.partitions import backfill_policy, partitions_definition, run_slice
from flare_assets.defs.resources import SparkResource, run_static_confs, static_conf_tag
from flare_assets.engine import run_job
from flare_assets.engine.batch.context import RunContext
from flare_assets.engine.batch.idempotence import run_properties
from flare_assets.engine.batch.partitions import PartitionSlice
from flare_assets.engine.batch.results import JobResult, PartitionWritten
from flare_assets.engine.batch.state import StateRequest, request_problems
from flare_assets.engine.batch.tuning import job_conf
from flare_assets.engine.errors import JobFailed
from flare_assets.engine.maintenance.actions import run_actions
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.model import Job, Output


class RunStateConfig(Config):
    """Replay controls, set in the launchpad: the run ignores the committed incremental state, or
    starts from chosen key values (`key` or `input.key`)."""

    reset_state: bool = False
    state: dict[str, str] = {}


def incremental_inputs(job: Job) -> list[str]:
    return [i.name for i in job.inputs if i.incremental or i.incremental_read]


def group_name(lj: LoadedJob) -> str:
    return dagster_name(lj.manifest.name)


def _owners(owner: str | None) -> list[str]:
    if not owner:
        return []
    return [
        owner if "@" in owner or owner.startswith("team:") else f"team:{re.sub(r'[^A-Za-z0-9_]', '_', owner)}"
    ]


def output_spec(lj: LoadedJob, output: Output, location: Location, deps: list[AssetKey]) -> AssetSpec:
    iceberg = location.depots.is_iceberg(output.address)
    dag_job = lj.dag_job
    description = (
        output.description
        or dag_job.description
        or dag_job.spec.description
        or lj.manifest.workflow.description
        or lj.manifest.description
    )
    return AssetSpec(
        key=location.keys(output.address),
        skippable=bool(incremental_inputs(dag_job.job)),
        group_name=group_name(lj),
        description=description,
        kinds={"spark", "iceberg" if iceberg else output.format},
        tags=dagster_tags(lj.manifest.tags + dag_job.tags + dag_job.spec.tags + output.tags),
        owners=_owners(lj.manifest.owner),
        deps=deps,
        metadata={
            "dataset": output.dataset,
            "manifest": str(lj.file),
            "job": dag_job.name,
            **({"title": title} if (title := _title(lj, output)) else {}),
        },
    )


def _title(lj: LoadedJob, output: Output) -> str | None:
    """The most specific Flare title: the output's, its job's, the workflow's."""
    dag_job, manifest = lj.dag_job, lj.manifest
    return output.title or dag_job.title or dag_job.spec.title or manifest.workflow.title or manifest.title


def source_specs(jobs: list[LoadedJob], location: Location) -> list[AssetSpec]:
    """Inputs that no manifest writes (landing folders, external tables) appear as external assets."""
    depots, keys = location.depots, location.keys
    written = {str(o.address) for lj in jobs for o in lj.dag_job.job.outputs}
    seen: dict[str, AssetSpec] = {}
    for lj in jobs:
        for item in lj.dag_job.job.inputs:
            addr = item.address
            if str(addr) in written or str(addr) in seen:
                continue
            depot = depots.depots[addr.depot]
            kind = "iceberg" if depots.is_iceberg(addr) else (item.format or depot.format or "files")
            seen[str(addr)] = AssetSpec(
                key=keys(addr),
                group_name="sources",
                kinds={kind},
                description=f"{addr} ({depot.type} depot), read by flare jobs",
                metadata={"dataset": str(addr)},
            )
    return list(seen.values())


F = TypeVar("F", bound=Callable[..., object])


def _compute_template(context: AssetExecutionContext, spark: SparkResource) -> Iterator[MaterializeResult]:
    yield from ()


COMPUTE_SIGNATURE = inspect.signature(_compute_template)


def known_signature(signature: inspect.Signature) -> Callable[[F], F]:
    """Gives a function its signature up front: Dagster inspects a compute function a dozen times
    while it builds the op, and every job's closure has the same one."""

    def apply(fn: F) -> F:
        fn.__signature__ = signature  # type: ignore[attr-defined]
        return fn

    return apply


def job_assets(lj: LoadedJob, workflow: list[LoadedJob], location: Location) -> AssetsDefinition:
    """The job's multi_asset; `workflow` holds the jobs of its manifest (those it `depends` on), and
    its runs use `location` (what the definitions were built with)."""
    job, keys = lj.dag_job.job, location.keys
    by_key = {keys(o.address): o.name for o in job.outputs}

    @multi_asset(
        name=lj.name,
        specs=[output_spec(lj, o, location, _deps(lj, workflow, keys)) for o in job.outputs],
        check_specs=_check_specs(job, keys),
        # outputs writing one view to several datasets (Flare's pre-sink example) are written together
        can_subset=len(by_key) == len(set(by_key.values())),
        description=lj.dag_job.title or lj.label,
        pool=lj.dag_job.pool,
        op_tags=static_conf_tag(lj.dag_job.spec.stack_spec.static_conf()),
        partitions_def=partitions_definition(job.partitions),
        backfill_policy=backfill_policy(job.partitions),
        config_schema=config_fields(RunStateConfig),
    )
    @known_signature(COMPUTE_SIGNATURE)
    def _compute(context: AssetExecutionContext, spark: SparkResource) -> Iterator[MaterializeResult]:
        only = {by_key[k] for k in context.selected_asset_keys}
        session, result = _run(context, spark, lj, location, only)
        yield from _results(context, session, job, result, keys)

    return _compute


def _deps(lj: LoadedJob, workflow: list[LoadedJob], keys: AssetKeys) -> list[AssetKey]:
    """What the job's outputs depend on: its inputs (but a table it also writes), and the outputs of
    the jobs it `depends` on."""
    job = lj.dag_job.job
    upstream = [d for d in workflow if d.dag_job.name in lj.dag_job.depends]
    own = {keys(o.address) for o in job.outputs}  # a table the job reads and writes
    deps = [keys(i.address) for i in job.inputs if keys(i.address) not in own]
    return deps + [keys(o.address) for up in upstream for o in up.dag_job.job.outputs]


def _check_specs(job: Job, keys: AssetKeys) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            name=a.check_name(i),
            asset=keys(o.address),
            blocking=a.blocking,
            description=a.description or "; ".join(a.tests) + (f" on {a.column}" if a.column else ""),
        )
        for o in job.outputs
        for i, a in enumerate(job.assertions_for(o))
    ]


def _run(
    context: AssetExecutionContext, spark: SparkResource, lj: LoadedJob, location: Location, only: set[str]
) -> tuple[SparkSession, JobResult]:
    """One run of the job (and its actions) for the selected outputs. The replay config and the
    partition range are checked before the run starts Spark."""
    job, label = lj.dag_job.job, lj.label
    depots, settings = location.depots, location.settings
    config = op_config(RunStateConfig, context)
    request = StateRequest(reset=config.reset_state, values=dict(config.state))
    problems = request_problems(job, request, only)
    if problems:
        raise JobFailed(f"{label}: replay config: {'; '.join(problems)}; nothing was run")
    partition = run_slice(context, job.partitions) if job.partitions else None
    stack = lj.dag_job.spec.stack_spec
    session, ignored = spark.session_for(stack.static_conf(), run_static_confs(context), settings, depots)
    runtime = {k: v for k, v in stack.conf().items() if k not in stack.static_conf()}
    with job_conf(session, runtime) as static:
        for key in ignored + static:
            context.log.warning(
                f"{key} is a static Spark conf and the run's JVM was already started without it, so it "
                "does not apply to this job. Run the job alone, or set it in FLARE_SPARK_CONF."
            )
        ctx = RunContext(
            session,
            job,
            depots,
            settings,
            name=label,
            only=frozenset(only),
            run_id=context.run_id,
            partition=partition,
            request=request,
            snapshot_properties=run_identity(context, label, partition),
        )
        result = run_job(ctx)
        for done in run_actions(session, job, depots, settings, name=label):
            context.log.info(f"{done.action} on {done.table}: {done.counters or done.rows_matched}")
    return session, result


def _results(
    context: AssetExecutionContext, session: SparkSession, job: Job, result: JobResult, keys: AssetKeys
) -> Iterator[MaterializeResult]:
    """Each written output's materialization, with its metadata, partitions and checks; a run that
    found nothing new observes its assets instead."""
    if result.skipped:
        context.log.info(result.skipped)
        for key in context.selected_asset_keys:
            context.log_event(AssetObservation(asset_key=key, metadata=skipped_metadata(result)))
        return
    spark_meta = {
        "spark_app_id": session.sparkContext.applicationId,
        "spark_master": session.sparkContext.master,
        "spark_driver_memory": session.sparkContext.getConf().get("spark.driver.memory", "1g"),
    }
    for out in result.outputs:
        key = keys(next(o.address for o in job.outputs if o.dataset == out.dataset))
        meta = {**output_metadata(out, result), **run_metadata(result), **spark_meta}
        for part in out.partitions:
            context.add_asset_metadata(
                partition_metadata(part), asset_key=key, partition_key=partition_key_of(part, job)
            )
        empty = [partition_label(p) for p in out.partitions if not p.rows]
        if empty:
            context.log.warning(f"{out.name}: no rows for partition(s) {', '.join(empty)}")
        selected = context.selected_asset_check_keys
        check_results = [check_result(key, c) for c in out.checks if AssetCheckKey(key, c.name) in selected]
        yield MaterializeResult(asset_key=key, metadata=meta, check_results=check_results)


def partition_key_of(part: PartitionWritten, job: Job) -> str:
    keys = part.keys
    return keys[job.partitions.dimensions[0].name] if len(keys) == 1 else MultiPartitionKey(keys)  # type: ignore[union-attr]


def run_identity(
    context: AssetExecutionContext, step: str, partition: PartitionSlice | None
) -> dict[str, str]:
    """The run's identity for the snapshots it commits: a re-execution keeps the root run id."""
    run = context.run
    root = run.root_run_id or run.tags.get("dagster/root_run_id") or context.run_id
    record = context.instance.get_run_record_by_id(root)
    created = int(record.create_timestamp.timestamp() * 1000) if record and record.create_timestamp else None
    return run_properties(root, context.run_id, step, partition.describe() if partition else None, created)
