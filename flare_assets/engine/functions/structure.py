"""Functions that change the shape of the rows: dedupe, explode, parse, pivot, unpivot."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StructType

from flare_assets.engine.functions.base import Transform, col, put
from flare_assets.spec.functions import structure as spec
from flare_assets.spec.functions.base import find


def drop_duplicates(df: DataFrame, fn: spec.DropDuplicates) -> DataFrame:
    return df.dropDuplicates([find(df.columns, c) for c in fn.columns] or None)


def flatten(df: DataFrame, fn: spec.Flatten) -> DataFrame:
    name = find(df.columns, fn.column) or fn.column
    kind, value = df.schema[name].dataType, col(df, name)
    if isinstance(kind, MapType):
        value = F.map_entries(value)
    elif not isinstance(kind, ArrayType):
        raise ValueError(f"{fn.name}: {name!r} is {kind.simpleString()}; it takes an array or a map column")
    explode = F.explode_outer if fn.name == "flatten_outer" else F.explode
    return put(df, fn.as_column or name, explode(value))


def parse_as_json(df: DataFrame, fn: spec.ParseAsJson) -> DataFrame:
    name = find(df.columns, fn.column) or fn.column
    value = col(df, name)
    if isinstance(df.schema[name].dataType, (StructType, ArrayType, MapType)):
        value = F.to_json(value)
    schema = fn.schema()
    parsed = F.from_json(
        value.cast("string"), StructType.fromJson(schema) if isinstance(schema, dict) else schema
    )
    return put(
        df, fn.as_column or name, F.when(F.get_json_object(value.cast("string"), "$").isNotNull(), parsed)
    )


def pivot(df: DataFrame, fn: spec.Pivot) -> DataFrame:
    keys = [find(df.columns, c) or c for c in fn.group_by]
    column = find(df.columns, fn.column) or fn.column
    aggregates = [F.expr(item.sql("spark")) for item in spec.projections(fn.aggregate_expression)]
    if fn.approach == "two-phase":
        df = df.groupBy(*[col(df, c) for c in dict.fromkeys([*keys, column])]).agg(*aggregates)
    return df.groupBy(*[col(df, c) for c in keys]).pivot(column, fn.values).agg(*aggregates)


def unfurl(df: DataFrame, fn: spec.Unfurl) -> DataFrame:
    wide = df.selectExpr("*", fn.expression)
    old, new = wide.columns[: len(df.columns)], wide.columns[len(df.columns) :]
    slots = [f"_c{i}" for i in range(len(wide.columns))]
    wide = wide.toDF(*slots)
    by_name = {n.lower(): slots[len(old) + i] for i, n in enumerate(new)}
    kept = [F.col(by_name.pop(c.lower(), slots[i])).alias(c) for i, c in enumerate(old)]
    added = [F.col(slot).alias(new[int(slot[2:]) - len(old)]) for slot in by_name.values()]
    return wide.select(*kept, *added)


def unpivot(df: DataFrame, fn: spec.Unpivot) -> DataFrame:
    ids, values = fn.split(df.columns)
    try:
        return df.unpivot(
            [col(df, c) for c in ids], [col(df, c) for c in values], fn.key_column_name, fn.value_column_name
        )
    except Exception as exc:
        if "UNPIVOT_VALUE_DATA_TYPE_MISMATCH" not in str(exc):
            raise
        listed = ", ".join(f"{c} {df.schema[c].dataType.simpleString()}" for c in values)
        raise ValueError(
            f"unpivot: the columns to unpivot have no common type ({listed}); give them one type first"
            " (set_type)"
        ) from exc


TRANSFORMS: dict[str, Transform] = {
    "drop_duplicates": drop_duplicates,
    "flatten": flatten,
    "flatten_outer": flatten,
    "parse_as_json": parse_as_json,
    "pivot": pivot,
    "unfurl": unfurl,
    "unpivot": unpivot,
}
