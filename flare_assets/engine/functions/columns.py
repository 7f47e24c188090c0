"""Functions that add, remove or rename columns."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from flare_assets.engine.functions.base import Transform, col, put
from flare_assets.spec.functions import columns as spec
from flare_assets.spec.functions.base import find


def _renamed(df: DataFrame, names: list[str]) -> DataFrame:
    """Every column renamed at once (`names` in column order); clashing results are an error."""
    lowered = [n.lower() for n in names]
    clash = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if clash:
        raise ValueError(f"the new column names repeat: {', '.join(clash)}")
    return df.toDF(*names)


def add_column(df: DataFrame, fn: spec.AddColumn) -> DataFrame:
    return df.withColumn(fn.column, F.lit(fn.value).cast(fn.type))


def change_column_case(df: DataFrame, fn: spec.ChangeColumnCase) -> DataFrame:
    return _renamed(df, fn.columns_after(df.columns))


def cleanse_column_names(df: DataFrame, fn: spec.CleanseColumnNames) -> DataFrame:
    return _renamed(df, fn.columns_after(df.columns))


def columns_replace(df: DataFrame, fn: spec.ColumnsReplace) -> DataFrame:
    return _renamed(df, fn.columns_after(df.columns))


def copy(df: DataFrame, fn: spec.Copy) -> DataFrame:
    return put(df, fn.to_column, col(df, fn.from_column))


def drop(df: DataFrame, fn: spec.Drop) -> DataFrame:
    return df.drop(*[find(df.columns, c) for c in fn.columns])


def rename(df: DataFrame, fn: spec.Rename) -> DataFrame:
    return _renamed(df, fn.columns_after(df.columns))


def rename_all(df: DataFrame, fn: spec.RenameAll) -> DataFrame:
    return _renamed(df, fn.columns_after(df.columns))


def select(df: DataFrame, fn: spec.Select) -> DataFrame:
    return df.select(*[col(df, c) for c in fn.columns])


def set_column(df: DataFrame, fn: spec.SetColumn) -> DataFrame:
    name = find(df.columns, fn.column) or fn.column
    return put(df, name, F.lit(fn.value).cast(df.schema[name].dataType))


def snake_case(df: DataFrame, fn: spec.SnakeCase) -> DataFrame:
    return _renamed(df, fn.columns_after(df.columns))


def swap(df: DataFrame, fn: spec.Swap) -> DataFrame:
    return _renamed(df, fn.columns_after(df.columns))


TRANSFORMS: dict[str, Transform] = {
    "add_column": add_column,
    "change_column_case": change_column_case,
    "cleanse_column_names": cleanse_column_names,
    "columns_replace": columns_replace,
    "copy": copy,
    "drop": drop,
    "rename": rename,
    "rename_all": rename_all,
    "select": select,
    "set_column": set_column,
    "snake_case": snake_case,
    "swap": swap,
}
