"""Malformed stream records, kept with the reason they were rejected in `<output>_quarantine`.

File streams are read in PERMISSIVE mode with a corrupt-record column: a record that is not valid
JSON or CSV, or whose values do not fit the schema, keeps its raw text there. Such records never
reach the job's steps and are never dropped: each micro-batch appends them here, once."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StructType

from flare_assets.engine.tables import iceberg
from flare_assets.spec.model import Output

CORRUPT = "_corrupt_record"


def table_for(output: Output) -> Output:
    """The quarantine table beside a stream's first Iceberg output, written by appends."""
    address = output.address
    return Output.model_validate(
        {
            "name": "quarantine",
            "dataset": f"dataos://{address.depot}:{address.collection}/{address.dataset}_quarantine",
            "options": {"saveMode": "append"},
        }
    )


def _json_reason(schema: StructType) -> Column:
    """Why a JSON record was rejected: not a JSON object, or the fields whose values do not fit."""
    fields = F.from_json(F.col(CORRUPT), "map<string,string>")
    checks = []
    for field in schema.fields:
        if field.name == CORRUPT or isinstance(field.dataType, StructType | ArrayType | MapType):
            continue
        kind = field.dataType.simpleString()
        value = fields.getItem(field.name)
        checks.append(
            F.when(
                value.isNotNull() & F.expr(f"try_cast({_sql_value(field.name)} AS {kind})").isNull(),
                F.concat(F.lit(f"{field.name}: "), value, F.lit(f" is not {kind}")),
            )
        )
    fallback = F.lit(f"does not match the schema ({_ddl(schema)})")
    specific = F.concat_ws("; ", *checks) if checks else F.lit("")
    return (
        F.when(fields.isNull(), F.lit("not a JSON object")).when(specific != "", specific).otherwise(fallback)
    )


def _sql_value(name: str) -> str:
    quoted = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"from_json({CORRUPT}, 'map<string,string>')['{quoted}']"


def _ddl(schema: StructType) -> str:
    return ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in schema.fields if f.name != CORRUPT)


def reasons(bad: DataFrame, fmt: str, schema: StructType) -> DataFrame:
    """`record` (the raw text) and `reason` for each malformed record."""
    if fmt == "json":
        reason = _json_reason(schema)
    else:
        width = len([f for f in schema.fields if f.name != CORRUPT])
        reason = F.lit(f"does not match the schema ({width} columns: {_ddl(schema)})")
    return bad.select(F.col(CORRUPT).alias("record"), reason.alias("reason"), "*")


def rows(rejected: DataFrame, stream: str, batch_id: Column, source_file: Column) -> DataFrame:
    """The quarantine table's columns: record, reason, source_file, stream, batch_id, quarantined_at."""
    return rejected.select(
        "record",
        "reason",
        source_file.alias("source_file"),
        F.lit(stream).alias("stream"),
        batch_id.cast("bigint").alias("batch_id"),
        F.current_timestamp().alias("quarantined_at"),
    )


def write(
    spark: SparkSession,
    rejected: DataFrame,
    target: Output,
    stream: str,
    batch_id: int,
    source_file: Column,
    snapshot_properties: dict[str, str],
) -> None:
    """Appends one micro-batch's rejected records."""
    batch = rows(rejected, stream, F.lit(batch_id), source_file)
    iceberg.write(spark, batch, target, properties=snapshot_properties)
