"""Housekeeping in Dagster: its outcome as metadata, and a standalone maintenance job per output that
has a housekeeping block (the same work the output's materialization runs after its write)."""

import re
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    Config,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    op,
)
from pydantic import Field

from flare_assets.defs.config import config_schema, op_config
from flare_assets.defs.jobs import one_op_job
from flare_assets.defs.resources import SparkResource
from flare_assets.depots import DepotMap
from flare_assets.engine import housekeeping, state
from flare_assets.engine.context import RunContext
from flare_assets.engine.housekeeping import HousekeepingResult
from flare_assets.settings import Settings
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.model import Output


def _listing(items: list[str], limit: int = 50) -> str:
    shown = "\n".join(f"- `{i}`" for i in items[:limit])
    return shown + (f"\n- ... {len(items) - limit} more" if len(items) > limit else "")


def housekeeping_metadata(result: HousekeepingResult) -> dict[str, Any]:
    """Numbers the UI plots over time (partitions and files before and after), and what moved."""
    meta: dict[str, Any] = {
        "housekeeping_mode": result.mode,
        "housekeeping_partitions_before": MetadataValue.int(result.partitions_before),
        "housekeeping_partitions_after": MetadataValue.int(result.partitions_after),
        "housekeeping_files_before": MetadataValue.int(result.files_before),
        "housekeeping_files_after": MetadataValue.int(result.files_after),
        "housekeeping_partitions_deleted": MetadataValue.int(len(result.deleted)),
        "housekeeping_partitions_archived": MetadataValue.int(len(result.archived)),
        "housekeeping_partitions_compacted": MetadataValue.int(len(result.compacted)),
        "housekeeping_s": MetadataValue.float(round(result.seconds, 3)),
    }
    done = [f"deleted {p}" for p in result.deleted]
    done += [f"archived {src} -> {dst}" for src, dst in result.archived.items()]
    done += [f"compacted {p}" for p in result.compacted]
    done += [f"repaired {p}" for p in result.repaired]
    if done:
        meta["housekeeping"] = MetadataValue.md(_listing(done))
    if result.snapshot_id is not None:
        meta["housekeeping_snapshot_id"] = MetadataValue.text(str(result.snapshot_id))
    return meta


class HousekeepingConfig(Config):
    run_number: int | None = Field(
        default=None, description="runId the expressions see (default: the output's last run number)"
    )


def job_name(output: Output) -> str:
    return "housekeeping__" + re.sub(r"\W", "_", "__".join(output.address.key))


def housekeeping_job(
    lj: LoadedJob, output: Output, depots: DepotMap, settings: Settings | None = None
) -> JobDefinition:
    """One op on the run's Spark session: housekeeping of what the output holds now, observed on its
    asset. It shares the writing job's concurrency pool, so the two never overlap when one is set."""
    settings = settings or Settings.from_env()
    key = AssetKey(output.address.key)
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


def housekeeping_jobs(
    jobs: list[LoadedJob], depots: DepotMap, settings: Settings | None = None
) -> list[JobDefinition]:
    return [
        housekeeping_job(lj, output, depots, settings)
        for lj in jobs
        for output in lj.dag_job.job.outputs
        if output.housekeeping is not None
    ]
