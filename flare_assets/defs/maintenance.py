"""Table maintenance as Dagster sees it: one job per pool, not per table, whose runs name the tables
they maintain, and one schedule per (kind, cron) over the tables that share it. A code location with
a thousand tables holds a handful of maintenance definitions, so its load does not grow with tables,
and a scheduled run maintains its tables one after another in one JVM."""

import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetObservation,
    Config,
    DefaultScheduleStatus,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    op,
)
from pydantic import Field

from flare_assets.defs.config import config_schema, op_config
from flare_assets.defs.jobs import action_job, one_op_job
from flare_assets.defs.keys import dagster_name
from flare_assets.defs.location import Location
from flare_assets.defs.resources import SparkResource
from flare_assets.defs.schedules import action_schedules
from flare_assets.defs.sensors import health_sensor
from flare_assets.defs.tables import (
    MaintainedTable,
    health_figures,
    health_metadata,
    lakehouse_tables,
    maintenance_op_name,
    maintenance_run_config,
    table_health,
)
from flare_assets.engine.errors import JobFailed
from flare_assets.engine.maintenance import actions as engine
from flare_assets.settings import Settings
from flare_assets.spec.actions import Action
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.maintenance import MAINTENANCE_KINDS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class MaintenanceConfig(Config):
    """What one maintenance run does; the defaults are what a scheduled run of every kind does."""

    tables: list[str] = Field(
        default_factory=list,
        description="the tables to maintain, as depot.collection.dataset or dataos:// addresses "
        "(default: every table of this job that has been written)",
    )
    kinds: list[str] = Field(
        default_factory=lambda: list(MAINTENANCE_KINDS),
        description="some of: compaction, manifests, expiry, orphans",
    )
    targeted: bool = Field(default=False, description="health-driven: compact only the small files")
    delete_where: str | None = Field(
        default=None, description="delete_from_dataset: the rows to delete (needs `tables`)"
    )
    all: bool = Field(
        default=False, description="delete every row (needed for an empty or always-true where)"
    )
    dry_run: bool = Field(default=False, description="count the rows deleteWhere matches, delete nothing")

    @property
    def deletes(self) -> bool:
        return self.delete_where is not None or self.all


def _delete_action(cfg: MaintenanceConfig) -> Action:
    try:
        return Action(name="delete_from_dataset", input="t", delete_where=cfg.delete_where, all=cfg.all)
    except ValueError as exc:
        raise JobFailed(f"delete_from_dataset: {exc}; nothing was deleted") from exc


def _chosen(config: MaintenanceConfig, tables: dict[str, MaintainedTable]) -> list[MaintainedTable]:
    """The run's tables, checked with its kinds before Spark starts."""
    problems = []
    kinds = [k for k in config.kinds if k not in MAINTENANCE_KINDS]
    if kinds:
        problems.append(f"unknown maintenance {', '.join(kinds)}; allowed: {', '.join(MAINTENANCE_KINDS)}")
    by_name = tables | {str(t.address): t for t in tables.values()}
    unknown = [n for n in config.tables if n not in by_name]
    if unknown:
        shown = ", ".join(list(tables)[:10]) + (" ..." if len(tables) > 10 else "")
        problems.append(f"this job maintains no table {', '.join(unknown)}; its tables: {shown}")
    if config.deletes and not config.tables:
        problems.append("delete_from_dataset needs `tables`: the tables to delete from")
    if problems:
        raise JobFailed("; ".join(problems) + "; no maintenance ran")
    named = {by_name[n].address.table: by_name[n] for n in config.tables}  # each table once
    return list(named.values()) or list(tables.values())


def _action_metadata(
    context: OpExecutionContext, action: Action, done: engine.ActionResult
) -> dict[str, Any]:
    """What one action did, logged and as the table's observation metadata."""
    context.log.info(f"{action.name}: {done.statement} -> {done.counters or done.rows_matched}")
    meta: dict[str, Any] = {f"{action.name}.{k}": MetadataValue.int(v) for k, v in done.counters.items()}
    if action.name == "remove_orphans":
        meta["orphans_found"] = MetadataValue.int(len(done.files))
        meta["orphans_removed"] = MetadataValue.int(0 if done.dry_run else len(done.files))
    if done.rows_matched is None:
        return meta
    context.log.info(
        f"delete_from_dataset: {done.rows_matched} of {done.rows_total} rows match "
        f"{action.delete_where!r}" + (" (dry run: nothing deleted)" if done.dry_run else "")
    )
    meta["rows_matched"] = MetadataValue.int(done.rows_matched)
    meta["rows_total"] = MetadataValue.int(done.rows_total or 0)
    if done.dry_run and not action.all and done.rows_matched == done.rows_total:
        context.log.warning(
            "delete_from_dataset: the predicate matches every row; without all: true the "
            "delete would be refused"
        )
    meta["rows_deleted"] = MetadataValue.int(0 if done.dry_run else done.rows_matched)
    return meta


def _maintain(
    context: OpExecutionContext,
    session: "SparkSession",
    table: MaintainedTable,
    config: MaintenanceConfig,
    settings: Settings,
) -> AssetObservation | None:
    """One table's maintenance, before and after figures on its asset; None when it does not exist
    yet and the run did not name it."""
    from pyiceberg.exceptions import NoSuchTableError

    name, start = table.address.table, time.perf_counter()
    try:
        before = table_health(table, None, settings)
    except NoSuchTableError as exc:
        if config.tables:
            raise JobFailed(f"table {name} does not exist; no maintenance ran") from exc
        context.log.info(f"{name}: not written yet, nothing to maintain")
        return None
    now_ms = int(time.time() * 1000)
    actions = [engine.plan(k, table.settings, before, now_ms, config.targeted) for k in config.kinds]
    actions += [_delete_action(config)] if config.deletes else []
    engine.check_all(session, [(name, a) for a in actions], now_ms, f"{name}: ", "no maintenance ran")
    meta: dict[str, Any] = {}
    for action in actions:
        done = engine.run_checked(session, (name, action), now_ms, "", dry_run=config.dry_run)
        meta.update(_action_metadata(context, action, done))
    after = table_health(table, None, settings)
    meta.update(health_figures("before", before) | health_figures("after", after) | health_metadata(after))
    meta["maintenance"] = ", ".join(config.kinds + [a.name for a in actions[len(config.kinds) :]])
    meta["duration_s"] = MetadataValue.float(round(time.perf_counter() - start, 3))
    return AssetObservation(asset_key=table.asset_key, metadata=meta)


def maintenance_job(name: str, tables: list[MaintainedTable], location: Location) -> JobDefinition:
    """One job for the tables of one pool; a run maintains the tables its config names (all by
    default), and a table that fails does not stop the others."""
    depots, settings = location.depots, location.settings
    by_name = {t.address.table: t for t in tables}

    @op(
        name=maintenance_op_name(name),
        pool=tables[0].pool,
        description=f"Maintenance of {len(tables)} table(s) through Iceberg's Spark procedures",
        out={},
        config_schema=config_schema(MaintenanceConfig),
    )
    def maintain(context: OpExecutionContext, spark: SparkResource) -> Iterator[Any]:
        config = op_config(MaintenanceConfig, context)
        chosen = _chosen(config, by_name)
        session, _ = spark.session_for({}, None, settings, depots)
        failed: list[str] = []
        for table in chosen:
            try:
                seen = _maintain(context, session, table, config, settings)
            except Exception as exc:  # one table's failure does not stop the others
                if len(chosen) == 1:
                    raise
                context.log.error(f"{table.address.table}: {exc}")
                failed.append(f"{table.address.table}: {exc}")
                continue
            if seen is not None:
                yield seen
        if failed:
            raise JobFailed(
                f"maintenance failed on {len(failed)} of {len(chosen)} tables: " + "; ".join(failed)
            )

    return one_op_job(
        name, maintain, f"Maintenance of {len(tables)} lakehouse table(s)", {"flare/maintenance": ""}
    )


def _schedule_name(job: str, kind: str, cron: str, running: bool, alone: bool) -> str:
    base = f"{job}__{kind}"
    return base if alone else f"{base}__{dagster_name(cron.replace('*', 'x'))}{'_running' if running else ''}"


def maintenance_schedules(job_def: JobDefinition, tables: list[MaintainedTable]) -> list[ScheduleDefinition]:
    """A schedule per (kind, cron, running) over the job's tables that share it; `<job>__<kind>`
    when every table of the job shares one."""
    groups: dict[tuple[str, str, bool], list[str]] = {}
    for table in tables:
        for kind in MAINTENANCE_KINDS:
            cron = getattr(table.settings.schedules, kind)
            if cron is not None:
                groups.setdefault((kind, cron, table.settings.schedules_running), []).append(
                    table.address.table
                )
    per_kind = Counter(kind for kind, _, _ in groups)
    return [
        ScheduleDefinition(
            name=_schedule_name(job_def.name, kind, cron, running, per_kind[kind] == 1),
            job=job_def,
            cron_schedule=cron,
            run_config=maintenance_run_config(job_def.name, kinds=[kind], tables=names),
            default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
            execution_timezone="UTC",
            description=f"{kind} of {len(names)} table(s): {', '.join(names[:5])}"
            + (" ..." if len(names) > 5 else ""),
        )
        for (kind, cron, running), names in groups.items()
    ]


def maintenance_definitions(
    jobs: list[LoadedJob], location: Location, prefix: str = "flare"
) -> dict[str, list[Any]]:
    """Jobs, schedules and the health sensor, for build_definitions to add; `prefix` names them, so
    several component instances share a code location."""
    tables = lakehouse_tables(jobs, location, prefix)
    by_job: dict[str, list[MaintainedTable]] = {}
    for table in tables:
        by_job.setdefault(table.job_name, []).append(table)
    table_jobs = [maintenance_job(name, group, location) for name, group in by_job.items()]
    schedules = [s for j in table_jobs for s in maintenance_schedules(j, by_job[j.name])]
    actions = [
        (lj, action_job(lj, location)) for lj in jobs if lj.dag_job.job.actions and not lj.dag_job.job.outputs
    ]
    schedules += [s for lj, j in actions for s in action_schedules(lj, j)]
    sensors = (
        [health_sensor(tables, table_jobs, location.settings, f"{prefix}_table_health")] if tables else []
    )
    return {"jobs": table_jobs + [j for _, j in actions], "schedules": schedules, "sensors": sensors}
