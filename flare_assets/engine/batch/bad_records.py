"""Malformed records in batch JSON and CSV inputs, handled as stream jobs handle them.

Each file input has a policy (`onBadRecords`): `quarantine` (the default) reads the files in
PERMISSIVE mode with a corrupt-record column, so a line that is not valid JSON or CSV, a CSV row with
too many or too few fields, or a value that does not fit the declared schema ('n/a' in an int
column) is caught instead of becoming a row of nulls; those records go to the quarantine table with
the reason, the source file and the run, and never reach the steps. `fail` fails the run naming
them, before anything is written. `permissive` keeps Spark's own behaviour on purpose.

Without a declared schema (`schemaString`, `schemaPath`) the schema is inferred from the valid
records only, so a malformed line neither adds a `_corrupt_record` column nor turns every column
into a string; a value of the wrong type can then only be caught by declaring the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, _parse_datatype_string

from flare_assets.depots import DepotMap
from flare_assets.engine.batch import idempotence
from flare_assets.engine.errors import JobFailed
from flare_assets.engine.tables import iceberg, io, quarantine
from flare_assets.settings import Settings
from flare_assets.spec.model import Input, Job, Output

if TYPE_CHECKING:
    from flare_assets.engine.batch.context import RunContext

FORMATS = ("json", "csv")
SOURCE_FILE = "_flare_source_file"
EXAMPLES = 5


@dataclass
class Rejected:
    """An input's malformed records (`frame`: the parsed input, held until the job ends)."""

    input: str
    policy: str
    fmt: str
    schema: StructType
    frame: DataFrame
    count: int
    sep: str = ","


@dataclass
class BadRecords:
    """What a run did with an input's malformed records, for the metadata."""

    input: str
    policy: str
    count: int
    table: str | None = None
    examples: list[str] = field(default_factory=list)


def applies(item: Input, depots: DepotMap) -> bool:
    """A JSON or CSV file input whose policy is not `permissive`, and whose options do not choose
    Spark's parse mode themselves (`mode`, `columnNameOfCorruptRecord`)."""
    depot = depots.depots[item.address.depot]
    fmt = (item.format or depot.format or "parquet").lower()
    chosen = {k.lower() for k in [*depot.options, *item.options]} & {"mode", "columnnameofcorruptrecord"}
    return depot.type != "iceberg" and fmt in FORMATS and item.on_bad_records != "permissive" and not chosen


def read(
    spark: SparkSession, item: Input, depots: DepotMap, settings: Settings
) -> tuple[DataFrame, Rejected]:
    """The input's valid records (its `query` applied) and its malformed ones."""
    reader = io.file_reader(spark, item, depots, settings)
    fmt = (item.format or depots.depots[item.address.depot].format or "").lower()
    path = io.folder(item.address, depots, settings)
    schema = _declared(item, depots, settings) or _inferred(reader, path)
    full = StructType([*schema.fields, StructField(quarantine.CORRUPT, StringType())])
    parsed = (
        reader.schema(full)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", quarantine.CORRUPT)
        .load(path)
        .select("*", F.col("_metadata.file_path").alias(SOURCE_FILE))
        .persist()  # Spark reads the corrupt-record column of a cached frame only
    )
    count = parsed.filter(F.col(quarantine.CORRUPT).isNotNull()).count()
    good = parsed.filter(F.col(quarantine.CORRUPT).isNull()).drop(quarantine.CORRUPT, SOURCE_FILE)
    options = {**depots.depots[item.address.depot].options, **item.options}
    sep = str(options.get("sep", options.get("delimiter", ",")))
    rejected = Rejected(item.name, item.on_bad_records, fmt, full, parsed, count, sep)
    return io.apply_query(spark, item, good), rejected


def _declared(item: Input, depots: DepotMap, settings: Settings) -> StructType | None:
    given = io.read_schema(item, depots, settings)
    if given is None or isinstance(given, StructType):
        return given
    parsed = _parse_datatype_string(given)
    return parsed if isinstance(parsed, StructType) else None


def _inferred(reader: DataFrameReader, path: str) -> StructType:
    """The schema of the valid records: malformed ones take no part in inference."""
    schema = reader.option("mode", "DROPMALFORMED").load(path).schema
    return StructType([f for f in schema.fields if f.name != quarantine.CORRUPT])


def settle(ctx: RunContext, rejected: list[Rejected], run_number: int) -> list[BadRecords]:
    """Fails the run for inputs whose policy is `fail`; appends the others' malformed records to the
    quarantine table in one commit (once per Dagster run: a re-execution finds it)."""
    spark, job, depots, name = ctx.spark, ctx.job, ctx.depots, ctx.name
    snapshot_properties = dict(ctx.snapshot_properties)
    found = [r for r in rejected if r.count]
    failing = [r for r in found if r.policy == "fail"]
    if failing:
        lines = [f"input {r.input!r}: {r.count} malformed record(s), e.g. {_examples(r, 3)}" for r in failing]
        raise JobFailed(f"{name}: " + "; ".join(lines) + " (onBadRecords: fail); nothing was written")
    out = [BadRecords(r.input, r.policy, r.count) for r in rejected]
    if not found:
        return out
    target = table_for(job, depots, found[0].input)
    frames = [_rows(r, name, run_number, snapshot_properties) for r in found]
    rows = frames[0]
    for frame in frames[1:]:
        rows = rows.unionByName(frame)
    table = target.address.table
    props = dict(snapshot_properties or {})
    ident = idempotence.identity(props)
    if not ident or idempotence.landed(spark, table, "main", ident) is None:
        iceberg.write(spark, rows, target, properties=props)
    for report, r in zip(out, rejected, strict=True):
        if r.count:
            report.table = table
            report.examples = _examples(r, EXAMPLES)
    return out


def table_for(job: Job, depots: DepotMap, input_name: str) -> Output:
    """`<output>_quarantine` beside the job's first Iceberg output, as for streams; a job writing
    only files quarantines into `<input>_quarantine` in the default lakehouse."""
    outputs = [o for o in job.outputs if depots.is_iceberg(o.address)]
    if outputs:
        return quarantine.table_for(outputs[0])
    item = next(i for i in job.inputs if i.name == input_name)
    return Output.model_validate(
        {
            "name": "quarantine",
            "dataset": f"dataos://{depots.default_lakehouse}:{item.address.collection}/"
            f"{item.address.dataset}_quarantine",
            "options": {"saveMode": "append"},
        }
    )


def _reasons(r: Rejected) -> DataFrame:
    bad = r.frame.filter(F.col(quarantine.CORRUPT).isNotNull())
    if r.fmt == "json":
        return quarantine.reasons(bad, "json", r.schema)
    return bad.select(F.col(quarantine.CORRUPT).alias("record"), _csv_reason(r).alias("reason"), "*")


def _csv_reason(r: Rejected) -> Column:
    """Too many or too few fields, or the columns whose values do not fit their type."""
    fields = [f for f in r.schema.fields if f.name != quarantine.CORRUPT]
    tokens = f"split({quarantine.CORRUPT}, '{_sql(r.sep)}', -1)"
    checks = []
    for n, f in enumerate(fields):
        kind = f.dataType.simpleString()
        if kind == "string":
            continue
        value = f"trim({tokens}[{n}])"
        checks.append(
            F.when(
                F.expr(f"{value} <> '' AND try_cast({value} AS {kind}) IS NULL"),
                F.concat(F.lit(f"{f.name}: '"), F.expr(value), F.lit(f"' is not {kind}")),
            )
        )
    width, count = len(fields), F.expr(f"size({tokens})")
    specific = F.concat_ws("; ", *checks) if checks else F.lit("")
    return (
        F.when(count != width, F.concat(count.cast("string"), F.lit(f" fields, expected {width}")))
        .when(specific != "", specific)
        .otherwise(F.lit(f"does not match the schema ({quarantine._ddl(r.schema)})"))
    )


def _regex(sep: str) -> str:
    return "".join("\\" + c if not c.isalnum() else c for c in sep)


def _sql(sep: str) -> str:
    return _regex(sep).replace("\\", "\\\\").replace("'", "\\'")


def _rows(r: Rejected, name: str, run_number: int, props: dict[str, str] | None) -> DataFrame:
    """The quarantine table's columns for a batch input: record, reason, source_file, input, job, run."""
    run = (props or {}).get(idempotence.RUN) or str(run_number)
    return _reasons(r).select(
        "record",
        "reason",
        F.col(SOURCE_FILE).alias("source_file"),
        F.lit(r.input).alias("input"),
        F.lit(name).alias("job"),
        F.lit(run).alias("run_id"),
        F.lit(run_number).cast("bigint").alias("run_number"),
        F.current_timestamp().alias("quarantined_at"),
    )


def _examples(r: Rejected, n: int) -> list[str]:
    return [f"{row['record'][:200]!r}: {row['reason']}" for row in _reasons(r).limit(n).collect()]
