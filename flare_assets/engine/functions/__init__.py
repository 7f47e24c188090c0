"""Flare functions as DataFrame transformations, applied in order to a step's SQL result.

Each family module maps function names to `transform(df, spec) -> DataFrame`, built from Spark's
own functions. Before each one runs, its spec's `problems` are checked against the real columns, so
a missing column fails naming the step, the function and the columns there are.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from flare_assets.engine.functions import columns, dates, structure, text, values
from flare_assets.engine.functions.base import Transform
from flare_assets.spec.functions import FunctionSpec

TRANSFORMS: dict[str, Transform] = {
    name: transform
    for family in (columns, values, dates, text, structure)
    for name, transform in family.TRANSFORMS.items()
}


def apply_functions(df: DataFrame, functions: list[FunctionSpec]) -> DataFrame:
    """`df` through every function in order; ValueError naming the function (by position) that
    cannot run on the columns it gets."""
    for i, spec in enumerate(functions):
        problems = spec.problems(df.columns)
        if problems:
            raise ValueError(f"functions[{i}] {'; '.join(problems)}")
        df = TRANSFORMS[spec.name](df, spec)
    return df


__all__ = ["TRANSFORMS", "apply_functions"]
