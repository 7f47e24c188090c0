"""The shape of a function's transformation, and column helpers every family uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from flare_assets.spec.functions.base import find

Transform = Callable[[DataFrame, Any], DataFrame]


def col(df: DataFrame, name: str) -> Column:
    """The column `name` as Spark resolves it, quoted so dots and spaces in names are literal."""
    return F.col(f"`{(find(df.columns, name) or name).replace('`', '``')}`")


def put(df: DataFrame, name: str, value: Column) -> DataFrame:
    """`value` as column `name`: replaces it in place when it exists (whatever its case), else
    appends it."""
    return df.withColumn(find(df.columns, name) or name, value)
