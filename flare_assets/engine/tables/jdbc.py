"""Database depots: tables read and written through Spark's JDBC source.

The URL, driver and credentials come from the depot map (credentials from the environment
variables it names), never from the manifest; what the run reports names the depot and table only."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from flare_assets.depots import Depot, DepotMap
from flare_assets.spec.address import Address
from flare_assets.spec.model import Input, Output

# manifest keys that select the driver: accepted when they name one for the depot's engine
DRIVER_KEYS = ("driver",)


def is_jdbc(address: Address, depots: DepotMap) -> bool:
    return depots.depots[address.depot].type == "jdbc"


def _options(values: dict) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def connection(address: Address, depots: DepotMap) -> tuple[Depot, dict[str, str]]:
    """The depot and the options every read and write of the dataset starts from."""
    depot = depots.depots[address.depot]
    options = {
        "url": depot.jdbc_url(),
        "driver": depot.driver or depot.jdbc.driver,
        "dbtable": depot.jdbc_table(address.collection, address.dataset),
        **depot.jdbc_credentials(address.depot),
    }
    return depot, options


def target(address: Address, depots: DepotMap) -> str:
    """The table as the run reports it: depot and table, no URL or user."""
    depot = depots.depots[address.depot]
    return f"{address.depot}:{depot.jdbc_table(address.collection, address.dataset)}"


def read(spark: SparkSession, item: Input, depots: DepotMap) -> DataFrame:
    depot, base = connection(item.address, depots)
    extra = {k: v for k, v in item.options.items() if k not in DRIVER_KEYS}
    return (
        spark.read.format("jdbc")
        .options(**_options(depot.options))
        .options(**_options(extra))
        .options(**base)
        .load()
    )


def write(df: DataFrame, output: Output, depots: DepotMap) -> str:
    """append adds rows; overwrite replaces the table's rows (Spark drops and recreates the table,
    or truncates it with `extraOptions: {truncate: true}`)."""
    depot, base = connection(output.address, depots)
    extra = {k: v for k, v in output.options.extra_options.items() if k not in DRIVER_KEYS}
    writer = df.write.format("jdbc").mode(output.options.save_mode)
    writer.options(**_options(depot.options)).options(**_options(extra)).options(**base).save()
    return target(output.address, depots)
