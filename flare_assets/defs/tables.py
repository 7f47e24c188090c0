"""The Iceberg tables the manifests write, as maintenance sees them: where, which pool, how healthy."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    MetadataValue,
)

from flare_assets.catalog import load_catalog
from flare_assets.defs.keys import DEFAULT_KEYS, AssetKeys, dagster_name
from flare_assets.defs.location import Location
from flare_assets.engine.maintenance.health import TableHealth, read_health
from flare_assets.settings import Settings
from flare_assets.spec.address import Address
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.maintenance import TableMaintenance

if TYPE_CHECKING:  # pyiceberg loads only when health is read, not in every run process
    from pyiceberg.catalog import Catalog


HEALTH_FIGURES = ("data_files", "small_files", "data_bytes", "manifests", "snapshots", "delete_files")


DEFAULT_POOL = "flare/maintenance"


def maintenance_job_name(prefix: str, pool: str) -> str:
    """`<prefix>_maintenance` for the default pool, `<prefix>_maintenance__<pool>` for a writer's."""
    base = f"{prefix}_maintenance"
    return base if pool == DEFAULT_POOL else f"{base}__{dagster_name(pool)}"


def maintenance_op_name(job: str) -> str:
    return f"{job}_op"


def maintenance_run_config(job: str, **config: object) -> dict[str, object]:
    """A maintenance job's run config: `tables`, `kinds` and the other MaintenanceConfig fields."""
    return {"ops": {maintenance_op_name(job): {"config": config}}}


@dataclass(frozen=True)
class MaintainedTable:
    """A lakehouse table the code location knows, with its maintenance settings, pool and job."""

    address: Address
    settings: TableMaintenance
    pool: str = DEFAULT_POOL
    prefix: str = "flare"
    keys: AssetKeys = DEFAULT_KEYS

    @property
    def job_name(self) -> str:
        return maintenance_job_name(self.prefix, self.pool)

    @property
    def asset_key(self) -> AssetKey:
        return self.keys(self.address)

    @property
    def identifier(self) -> str:
        return self.address.identifier


def lakehouse_tables(
    jobs: list[LoadedJob], location: Location, prefix: str = "flare"
) -> list[MaintainedTable]:
    """Every iceberg output, and every table an action names; a table written by a job with a pool
    is maintained in that pool (so a limit of 1 keeps maintenance and writer apart), the others in
    DEFAULT_POOL."""
    depots, keys = location.depots, location.keys
    found: dict[str, MaintainedTable] = {}
    for lj in jobs:
        job_ = lj.dag_job.job
        for out in job_.outputs:
            if depots.is_iceberg(out.address):
                found[str(out.address)] = MaintainedTable(
                    out.address,
                    out.maintenance or TableMaintenance(),
                    lj.dag_job.pool or DEFAULT_POOL,
                    prefix,
                    keys,
                )
        inputs = {i.name: i for i in job_.inputs}
        for action in job_.actions:
            addr = inputs[action.input].address
            found.setdefault(str(addr), MaintainedTable(addr, TableMaintenance(), DEFAULT_POOL, prefix, keys))
    return list(found.values())


def table_health(
    table: MaintainedTable, catalogs: "dict[str, Catalog] | None" = None, settings: Settings | None = None
) -> TableHealth:
    catalogs = {} if catalogs is None else catalogs
    depot = table.address.depot
    catalog = catalogs.get(depot) or catalogs.setdefault(depot, load_catalog(depot, settings))
    ice = catalog.load_table(table.identifier)
    return read_health(ice, table.identifier, table.settings.thresholds)


def health_figures(prefix: str, health: TableHealth) -> dict[str, Any]:
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
