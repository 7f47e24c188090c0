"""Reading inputs into DataFrames and writing outputs to Iceberg tables or folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, DataFrameReader, SparkSession
from pyspark.sql.types import StructType

from flare_assets.depots import DepotMap
from flare_assets.engine import jdbc
from flare_assets.settings import Settings
from flare_assets.spec.address import Address
from flare_assets.spec.model import Input, Output

FILE_READ_DEFAULTS: dict[str, dict[str, str]] = {"csv": {"header": "true", "inferSchema": "true"}}
FILE_WRITE_DEFAULTS: dict[str, dict[str, str]] = {"csv": {"header": "true"}}


def folder(address: Address, depots: DepotMap, settings: Settings) -> str:
    depot = depots.depots[address.depot]
    root = settings.resolve(depot.path or address.depot)
    return str(root / address.collection / address.dataset)


def is_iceberg(address: Address, depots: DepotMap) -> bool:
    return depots.depots[address.depot].type == "iceberg"


def _options(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def read_schema(item: Input) -> str | StructType | None:
    """schemaString (DDL), or schemaPath: Spark's JSON schema or a DDL text file."""
    if item.schema_string:
        return item.schema_string
    if not item.schema_path:
        return None
    text = Path(item.schema_path).read_text()
    if text.lstrip().startswith("{"):
        return StructType.fromJson(json.loads(text))
    return text.strip()


def read_input(spark: SparkSession, item: Input, depots: DepotMap, settings: Settings) -> DataFrame:
    """The dataset as a DataFrame; an input `query` then runs over it, the input's name as its view."""
    address = item.address
    options = dict(item.options)
    if is_iceberg(address, depots):
        from flare_assets.engine.iceberg import time_travel

        frame = spark.read.options(**time_travel(spark, address.table, options)).table(address.table)
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
    reader = reader.options(**_options(depot.options)).options(**_options(item.options))
    schema = read_schema(item)
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
    writer = writer.options(**FILE_WRITE_DEFAULTS.get(fmt, {})).options(**_options(depot.options))
    writer = writer.options(**_options(extra))
    if output.options.partition_by:
        writer = writer.partitionBy(*output.options.partition_by)
    writer.save(path)
    return path
