"""Table maintenance in Dagster: a maintenance job per lakehouse table, its schedules, a health sensor
that observes every table through pyiceberg (no JVM) and launches only the maintenance needed, and
the jobs of manifests whose Flare jobs only run actions.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    AssetObservation,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    op,
    sensor,
)
from pydantic import Field

from flare_assets.catalog import load_catalog
from flare_assets.defs.config import config_schema, op_config
from flare_assets.defs.jobs import one_op_job
from flare_assets.defs.resources import SparkResource
from flare_assets.depots import DepotMap
from flare_assets.engine import maintenance as engine
from flare_assets.engine.errors import JobFailed
from flare_assets.health import TableHealth, needed, read_health
from flare_assets.settings import Settings
from flare_assets.spec.actions import Action
from flare_assets.spec.address import Address
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.maintenance import MAINTENANCE_KINDS, TableMaintenance

if TYPE_CHECKING:  # pyiceberg loads only when health is read, not in every run process
    from pyiceberg.catalog import Catalog

HEALTH_FIGURES = ("data_files", "small_files", "data_bytes", "manifests", "snapshots", "delete_files")
HEALTH_INTERVAL_S = 300


@dataclass(frozen=True)
class MaintainedTable:
    """A lakehouse table the code location knows, with its maintenance settings and pool."""

    address: Address
    settings: TableMaintenance
    pool: str

    @property
    def job_name(self) -> str:
        return "maintain__" + "__".join(self.address.key)

    @property
    def asset_key(self) -> AssetKey:
        return AssetKey(self.address.key)

    @property
    def identifier(self) -> str:
        return self.address.identifier


def lakehouse_tables(jobs: list[LoadedJob], depots: DepotMap) -> list[MaintainedTable]:
    """Every iceberg output, and every table an action names; a table written by a job with a pool
    is maintained in that pool (so a limit of 1 keeps maintenance and writer apart)."""
    found: dict[str, MaintainedTable] = {}
    for lj in jobs:
        job_ = lj.dag_job.job
        for out in job_.outputs:
            if depots.is_iceberg(out.address):
                pool = lj.dag_job.pool or f"maintenance/{out.address.table}"
                found[str(out.address)] = MaintainedTable(
                    out.address, out.maintenance or TableMaintenance(), pool
                )
        inputs = {i.name: i for i in job_.inputs}
        for action in job_.actions:
            addr = inputs[action.input].address
            found.setdefault(
                str(addr), MaintainedTable(addr, TableMaintenance(), f"maintenance/{addr.table}")
            )
    return list(found.values())


class MaintenanceConfig(Config):
    """What one maintenance run does; the defaults are what a scheduled run of every kind does."""

    kinds: list[str] = Field(
        default_factory=lambda: list(MAINTENANCE_KINDS),
        description="some of: compaction, manifests, expiry, orphans",
    )
    targeted: bool = Field(default=False, description="health-driven: compact only the small files")
    delete_where: str | None = Field(default=None, description="delete_from_dataset: the rows to delete")
    all: bool = Field(
        default=False, description="delete every row (needed for an empty or always-true where)"
    )
    dry_run: bool = Field(default=False, description="count the rows deleteWhere matches, delete nothing")


def _health(
    table: MaintainedTable, catalogs: "dict[str, Catalog] | None" = None, settings: Settings | None = None
) -> TableHealth:
    catalogs = {} if catalogs is None else catalogs
    depot = table.address.depot
    catalog = catalogs.get(depot) or catalogs.setdefault(depot, load_catalog(depot, settings))
    ice = catalog.load_table(table.identifier)
    return read_health(ice, table.identifier, table.settings.thresholds)


def _figures(prefix: str, health: TableHealth) -> dict[str, Any]:
    return {f"{k}_{prefix}": MetadataValue.int(int(getattr(health, k))) for k in HEALTH_FIGURES}


def health_metadata(health: TableHealth, needs: dict[str, str] | None = None) -> dict[str, Any]:
    """Numeric figures (plotted over time by the UI) and what maintenance the table needs."""
    meta: dict[str, Any] = {
        k: MetadataValue.float(float(v)) if isinstance(v, float) else MetadataValue.int(int(v))
        for k, v in health.figures().items()
    }
    if needs is not None:
        meta["needs"] = MetadataValue.text(", ".join(f"{k} ({v})" for k, v in needs.items()) or "nothing")
    return meta


def _delete_action(cfg: MaintenanceConfig) -> Action:
    try:
        return Action(name="delete_from_dataset", input="t", delete_where=cfg.delete_where, all=cfg.all)
    except ValueError as exc:
        raise JobFailed(f"delete_from_dataset: {exc}; nothing was deleted") from exc


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


def maintenance_job(
    table: MaintainedTable, settings: Settings | None = None, depots: DepotMap | None = None
) -> JobDefinition:
    """One job per table: the chosen kinds in order, before and after figures on the table's asset;
    runs use `settings` and `depots`, those the definitions were built with."""

    @op(
        name=f"{table.job_name}_op",
        pool=table.pool,
        description=f"Maintenance of {table.address.table} through Iceberg's Spark procedures",
        out={},
        config_schema=config_schema(MaintenanceConfig),
    )
    def maintain(context: OpExecutionContext, spark: SparkResource) -> Iterator[Any]:
        config = op_config(MaintenanceConfig, context)
        unknown = [k for k in config.kinds if k not in MAINTENANCE_KINDS]
        if unknown:
            raise JobFailed(
                f"unknown maintenance {', '.join(unknown)}; allowed: {', '.join(MAINTENANCE_KINDS)}"
            )
        delete = _delete_action(config) if config.delete_where is not None or config.all else None
        session, _ = spark.session_for({}, None, settings, depots)
        name = table.address.table
        start = time.perf_counter()
        from pyiceberg.exceptions import NoSuchTableError

        try:
            before = _health(table, None, settings)
        except NoSuchTableError as exc:
            raise JobFailed(f"table {name} does not exist; no maintenance ran") from exc
        now_ms = int(time.time() * 1000)
        actions = [engine.plan(k, table.settings, before, now_ms, config.targeted) for k in config.kinds]
        actions += [delete] if delete else []
        engine.check_all(session, [(name, a) for a in actions], now_ms, f"{name}: ", "no maintenance ran")
        meta: dict[str, Any] = {}
        for action in actions:
            done = engine.run_checked(session, name, action, now_ms, "", dry_run=config.dry_run)
            meta.update(_action_metadata(context, action, done))
        after = _health(table, None, settings)
        meta.update(_figures("before", before) | _figures("after", after) | health_metadata(after))
        meta["maintenance"] = ", ".join(config.kinds + (["delete_from_dataset"] if delete else []))
        meta["duration_s"] = MetadataValue.float(round(time.perf_counter() - start, 3))
        yield AssetObservation(asset_key=table.asset_key, metadata=meta)

    return one_op_job(
        table.job_name, maintain, f"Maintenance of {table.address.table}", {"flare/maintenance": ""}
    )


def maintenance_schedules(table: MaintainedTable, job_def: JobDefinition) -> list[ScheduleDefinition]:
    status = (
        DefaultScheduleStatus.RUNNING if table.settings.schedules_running else DefaultScheduleStatus.STOPPED
    )
    out = []
    for kind in MAINTENANCE_KINDS:
        cron = getattr(table.settings.schedules, kind)
        if cron is None:
            continue
        out.append(
            ScheduleDefinition(
                name=f"{table.job_name}__{kind}",
                job=job_def,
                cron_schedule=cron,
                run_config={"ops": {f"{table.job_name}_op": {"config": {"kinds": [kind]}}}},
                default_status=status,
                execution_timezone="UTC",
            )
        )
    return out


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
            health = _health(table, catalogs, settings)
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
                    run_config={
                        "ops": {f"{table.job_name}_op": {"config": {"kinds": kinds, "targeted": True}}}
                    },
                    tags={"flare/health": ",".join(kinds)},
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


def action_job(lj: LoadedJob, depots: DepotMap, settings: Settings | None = None) -> JobDefinition:
    """A Flare job with actions and no outputs: one op running its actions, each action's counters
    observed on its table's asset."""
    settings = settings or Settings.from_env()
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
            yield AssetObservation(asset_key=AssetKey(inputs[action.input].address.key), metadata=meta)

    return one_op_job(lj.name, run, lj.dag_job.title or label, {"flare/actions": ""})


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


def maintenance_definitions(
    jobs: list[LoadedJob],
    depots: DepotMap,
    settings: Settings | None = None,
    health_sensor_name: str = "flare_table_health",
) -> dict[str, list[Any]]:
    """Jobs, schedules and the health sensor, for build_definitions to add."""
    settings = settings or Settings.from_env()
    tables = lakehouse_tables(jobs, depots)
    table_jobs = [maintenance_job(t, settings, depots) for t in tables]
    schedules = [s for t, j in zip(tables, table_jobs, strict=True) for s in maintenance_schedules(t, j)]
    actions = [
        (lj, action_job(lj, depots, settings))
        for lj in jobs
        if lj.dag_job.job.actions and not lj.dag_job.job.outputs
    ]
    schedules += [s for lj, j in actions for s in action_schedules(lj, j)]
    sensors = [health_sensor(tables, table_jobs, settings, health_sensor_name)] if tables else []
    return {"jobs": table_jobs + [j for _, j in actions], "schedules": schedules, "sensors": sensors}
