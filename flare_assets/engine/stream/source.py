"""The stream input as a streaming DataFrame: a landing folder of files or an Iceberg table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, _parse_datatype_string

from flare_assets.depots import DepotMap
from flare_assets.engine.tables import io, quarantine
from flare_assets.settings import Settings
from flare_assets.spec.model import Job
from flare_assets.spec.streams import PERMISSIVE_FORMATS, STREAM_FILE_DEFAULTS, stream_input, target_output

FILE_PATH, FILE_TIME = "_flare_source_file", "_flare_file_time"


@dataclass
class StreamSource:
    """The streaming DataFrame and how it was read (its format, and for files the schema)."""

    frame: DataFrame
    fmt: str  # json, csv, parquet, orc or iceberg
    schema: StructType | None = None

    @property
    def permissive(self) -> bool:
        return self.fmt in PERMISSIVE_FORMATS


def read_stream(spark: SparkSession, job: Job, depots: DepotMap, settings: Settings) -> StreamSource:
    """The stream input as a streaming DataFrame. Files: the given schema (or the target table's),
    malformed records kept in a corrupt-record column, each row's file and arrival time added."""
    item = stream_input(job)
    address = item.address
    options = io.string_options(item.options)
    if depots.is_iceberg(address):
        return StreamSource(
            spark.readStream.format("iceberg").options(**options).load(address.table), "iceberg"
        )
    depot = depots.depots[address.depot]
    fmt = (item.format or depot.format or "parquet").lower()
    schema = _schema(spark, job, depots, settings)
    reader = spark.readStream.format(fmt).options(**io.FILE_READ_DEFAULTS.get(fmt, {}))
    reader = reader.options(**STREAM_FILE_DEFAULTS)  # every landed file is read: no age limit, subfolders too
    reader = reader.options(**io.string_options(depot.options)).options(**options)
    if fmt in PERMISSIVE_FORMATS:
        schema = StructType([*schema.fields, StructField(quarantine.CORRUPT, StringType())])
        reader = reader.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", quarantine.CORRUPT)
    landing = io.folder(address, depots, settings)
    if "://" not in landing:
        Path(landing).mkdir(parents=True, exist_ok=True)  # Spark refuses to watch a missing folder
    frame = reader.schema(schema).load(landing)
    frame = frame.select(
        "*",
        F.col("_metadata.file_path").alias(FILE_PATH),
        F.col("_metadata.file_modification_time").alias(FILE_TIME),
    )
    return StreamSource(frame, fmt, schema)


def _schema(spark: SparkSession, job: Job, depots: DepotMap, settings: Settings) -> StructType:
    given = io.read_schema(stream_input(job), depots, settings)
    if isinstance(given, StructType):
        return given
    if given is not None:
        parsed = _parse_datatype_string(given)
        return parsed if isinstance(parsed, StructType) else StructType([])
    target = target_output(job, depots)
    assert target is not None  # checked when the manifest was loaded
    return spark.table(target.address.table).schema
