"""Jobs beside the assets' own: partition backfills, and single-op jobs for housekeeping and
action-only manifests (table maintenance is in defs/maintenance.py). Single-op jobs are built
straight from their graph: the same JobDefinition `@job` gives, without tracing a composition
function for each."""

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from dagster import (
    AssetObservation,
    Config,
    GraphDefinition,
    JobDefinition,
    MetadataValue,
    OpDefinition,
    OpExecutionContext,
    define_asset_job,
    op,
)
from pydantic import Field

from flare_assets.defs.config import config_schema, op_config
from flare_assets.defs.keys import DEFAULT_KEYS, AssetKeys, dagster_name
from flare_assets.defs.location import Location
from flare_assets.defs.metadata import (
    housekeeping_metadata,
)
from flare_assets.defs.partitions import partitions_definition
from flare_assets.defs.resources import SparkResource
from flare_assets.engine import housekeeping
from flare_assets.engine.batch import state
from flare_assets.engine.batch.context import RunContext
from flare_assets.engine.maintenance import actions as engine
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.model import Output


def one_op_job(
    name: str, op_def: OpDefinition, description: str, tags: Mapping[str, str] | None = None
) -> JobDefinition:
    graph = GraphDefinition(name=name, node_defs=[op_def], description=description)
    return graph.to_job(description=description, tags=tags)


# what define_asset_job returns: its class is not part of Dagster's public API
AssetJob = Any


@cache  # one definition per job, shared by its schedule and the Definitions' jobs
def partitioned_job(lj: LoadedJob, keys: AssetKeys = DEFAULT_KEYS) -> AssetJob:
    """An asset job per partitioned Flare job: `dagster job backfill -j <name>_partitions` starts a
    backfill from the command line, as the UI's backfill dialog does."""
    job = lj.dag_job.job
    return define_asset_job(
        f"{lj.name}_partitions",
        selection=[keys(o.address) for o in job.outputs],
        partitions_def=partitions_definition(job.partitions),
    )


class HousekeepingConfig(Config):
    run_number: int | None = Field(
        default=None, description="runId the expressions see (default: the output's last run number)"
    )


def job_name(output: Output) -> str:
    return "housekeeping__" + dagster_name("__".join(output.address.key))


def housekeeping_job(lj: LoadedJob, output: Output, location: Location) -> JobDefinition:
    """One op on the run's Spark session: housekeeping of what the output holds now, observed on its
    asset. It shares the writing job's concurrency pool, so the two never overlap when one is set."""
    depots, settings = location.depots, location.settings
    key = location.keys(output.address)
    stack = lj.dag_job.spec.stack_spec

    @op(
        name=f"{job_name(output)}_op",
        pool=lj.dag_job.pool,
        description=f"housekeeping of {output.dataset}",
        config_schema=config_schema(HousekeepingConfig),
    )
    def _housekeep(context: OpExecutionContext, spark: SparkResource) -> None:
        config = op_config(HousekeepingConfig, context)
        session, _ = spark.session_for(stack.static_conf(), None, settings, depots)
        number = config.run_number
        if number is None:
            number = state.committed(RunContext(session, lj.dag_job.job, depots, settings, lj.label)).run_id
        ctx = housekeeping.context(lj.manifest.name, output, number)
        housekeeping.check(session, output, ctx)
        result = housekeeping.run(session, output, depots, settings, ctx)
        context.log_event(
            AssetObservation(
                asset_key=key,
                description=f"housekeeping ({result.mode}) at runId {number}",
                metadata={"run_number": MetadataValue.int(number), **housekeeping_metadata(result)},
            )
        )

    return one_op_job(job_name(output), _housekeep, f"Housekeeping of {output.dataset} ({lj.file.name})")


def housekeeping_jobs(jobs: list[LoadedJob], location: Location) -> list[JobDefinition]:
    return [
        housekeeping_job(lj, output, location)
        for lj in jobs
        for output in lj.dag_job.job.outputs
        if output.housekeeping is not None
    ]


def action_job(lj: LoadedJob, location: Location) -> JobDefinition:
    """A Flare job with actions and no outputs: one op running its actions, each action's counters
    observed on its table's asset."""
    depots, settings, keys = location.depots, location.settings, location.keys
    job_ = lj.dag_job.job
    inputs = {i.name: i for i in job_.inputs}
    label = lj.label

    @op(name=f"{lj.name}_actions", pool=lj.dag_job.pool, description=f"Actions of {label}", out={})
    def run(context: OpExecutionContext, spark: SparkResource) -> Iterator[Any]:
        session, _ = spark.session_for(lj.dag_job.spec.stack_spec.static_conf(), None, settings, depots)
        results = engine.run_actions(session, job_, depots, settings, name=label)
        for action, done in zip(job_.actions, results, strict=True):
            meta: dict[str, Any] = {
                f"{done.action}.{k}": MetadataValue.int(v) for k, v in done.counters.items()
            }
            meta["statement"] = MetadataValue.md(f"```sql\n{done.statement}\n```")
            meta["duration_s"] = MetadataValue.float(round(done.seconds, 3))
            if done.rows_matched is not None:
                meta["rows_matched"] = MetadataValue.int(done.rows_matched)
            if done.files:
                meta["orphan_files"] = MetadataValue.md("\n".join(f"- `{f}`" for f in done.files[:200]))
            context.log.info(f"{done.action} on {done.table}: {done.counters or done.rows_matched}")
            yield AssetObservation(asset_key=keys(inputs[action.input].address), metadata=meta)

    return one_op_job(lj.name, run, lj.dag_job.title or label, {"flare/actions": ""})
