"""Reading inputs into DataFrames and writing outputs to Iceberg tables or folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, DataFrameReader, SparkSession
from pyspark.sql.types import StructType

from flare_assets.depots import DepotMap
from flare_assets.engine.tables import jdbc
from flare_assets.settings import Settings
from flare_assets.spec.address import Address, parse_address
from flare_assets.spec.model import Input, Output
from flare_assets.spec.schemas import spark_schema

FILE_READ_DEFAULTS: dict[str, dict[str, str]] = {"csv": {"header": "true", "inferSchema": "true"}}
FILE_WRITE_DEFAULTS: dict[str, dict[str, str]] = {"csv": {"header": "true"}}


def folder(address: Address, depots: DepotMap, settings: Settings) -> str:
    depot = depots.depots[address.depot]
    root = settings.resolve(depot.path or address.depot)
    return str(root / address.collection / address.dataset)


def string_options(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def read_schema(item: Input, depots: DepotMap, settings: Settings) -> str | StructType | None:
    """schemaString or the schemaPath file (a dataos:// address names a file on a file depot): DDL,
    Spark's JSON schema or an Avro record."""
    if item.schema_string:
        text, filename = item.schema_string, ""
    elif item.schema_path:
        path = Path(item.schema_path)
        if item.schema_path.startswith("dataos://"):
            path = Path(folder(parse_address(item.schema_path), depots, settings))
        try:
            text, filename = path.read_text(), path.name
        except OSError as exc:
            reason = f"schemaPath {item.schema_path} ({path}) cannot be read: {exc.strerror}"
            raise ValueError(reason) from exc
    else:
        return None
    schema = spark_schema(text, item.schema_type, filename)
    return schema if isinstance(schema, str) else StructType.fromJson(schema)


def read_input(
    spark: SparkSession, item: Input, depots: DepotMap, settings: Settings, pin: bool = False
) -> DataFrame:
    """The dataset as a DataFrame; an input `query` then runs over it, the input's name as its view.
    `pin` (a table the job also writes) reads the snapshot its branch points at now, so the job's
    own write never changes what it read."""
    address = item.address
    options = dict(item.options)
    if depots.is_iceberg(address):
        from flare_assets.engine.tables.refs import head, time_travel

        chosen = time_travel(spark, address.table, options)
        if pin and not {"snapshot-id", "as-of-timestamp", "tag"} & set(chosen):
            snapshot, _ = head(spark, address.table, chosen.pop("branch", "main"))
            if snapshot is not None:
                chosen["snapshot-id"] = str(snapshot)
        frame = spark.read.options(**chosen).table(address.table)
    elif jdbc.is_jdbc(address, depots):
        frame = jdbc.read(spark, item, depots)
    else:
        frame = file_reader(spark, item, depots, settings).load(folder(address, depots, settings))
    return apply_query(spark, item, frame)


def apply_query(spark: SparkSession, item: Input, frame: DataFrame) -> DataFrame:
    if item.query:
        frame.createOrReplaceTempView(item.name)
        frame = spark.sql(item.query)
    return frame


def file_reader(spark: SparkSession, item: Input, depots: DepotMap, settings: Settings) -> DataFrameReader:
    """The depot's (or the input's) format and options, and the input's schema when it gives one."""
    depot = depots.depots[item.address.depot]
    fmt = (item.format or depot.format or "parquet").lower()
    reader = spark.read.format(fmt).options(**FILE_READ_DEFAULTS.get(fmt, {}))
    reader = reader.options(**string_options(depot.options)).options(**string_options(item.options))
    schema = read_schema(item, depots, settings)
    if schema is not None:
        reader = reader.schema(schema)
    return reader


def write_files(df: DataFrame, output: Output, depots: DepotMap, settings: Settings) -> str:
    """Syndication to a file depot: the depot's (or the output's) format, saveMode, partitionBy;
    to a jdbc depot: the table, with saveMode (see engine.jdbc);
    `extraOptions.coalesce: N` writes N files per partition (1: a single file), other extraOptions
    go to Spark's writer (compression, sep, ...)."""
    address = output.address
    if jdbc.is_jdbc(address, depots):
        return jdbc.write(df, output, depots)
    depot = depots.depots[address.depot]
    fmt = output.format if output.format != "iceberg" else (depot.format or "parquet")
    path = folder(address, depots, settings)
    extra = dict(output.options.extra_options)
    coalesce = extra.pop("coalesce", None)
    if coalesce is not None:
        df = df.coalesce(int(coalesce))
    writer = df.write.format(fmt).mode(output.options.save_mode)
    writer = writer.options(**FILE_WRITE_DEFAULTS.get(fmt, {})).options(**string_options(depot.options))
    writer = writer.options(**string_options(extra))
    if output.options.partition_by:
        writer = writer.partitionBy(*output.options.partition_by)
    writer.save(path)
    return path
