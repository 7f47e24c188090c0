"""The slice of an output a partitioned run replaces, and the placeholders its SQL sees.

A run covers one partition or, for a single-run backfill, a range (time windows) or a set of keys.
Keys were validated by the manifest model's rules again here, since dynamic keys come from users."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DateType

from flare_assets.spec.model import TIME_WINDOWS, PartitionDimension, partition_key


@dataclass(frozen=True)
class DimensionSlice:
    dimension: PartitionDimension
    keys: list[str]
    start: datetime | None = None  # time windows: [start, end) in the dimension's time zone
    end: datetime | None = None

    @property
    def is_time(self) -> bool:
        return self.dimension.type in TIME_WINDOWS

    def placeholders(self) -> dict[str, str]:
        name = self.dimension.name
        values = {f"{name}_in": ", ".join(f"'{k}'" for k in self.keys)}
        if len(self.keys) == 1:
            values[name] = self.keys[0]
        if self.start is not None and self.end is not None:
            values[f"{name}_start"] = self.start.isoformat(sep=" ")
            values[f"{name}_end"] = self.end.isoformat(sep=" ")
        return values


@dataclass(frozen=True)
class PartitionSlice:
    """What one run covers: one slice per dimension, or explicit key pairs for two dimensions."""

    dimensions: list[DimensionSlice]
    pairs: list[tuple[str, str]] = field(default_factory=list)  # two dimensions: the combinations run

    def __post_init__(self) -> None:
        for dim in self.dimensions:
            for key in dim.keys:
                partition_key(key)

    def describe(self) -> str:
        return "; ".join(
            f"{d.dimension.name}={d.keys[0]}" + (f"..{d.keys[-1]}" if len(d.keys) > 1 else "")
            for d in self.dimensions
        )

    def placeholders(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for dim in self.dimensions:
            values.update(dim.placeholders())
        return values

    def condition(self, types: dict[str, DataType]) -> Column:
        """Rows of the slice, on the output's columns (`types` by lower-case column name)."""
        if self.pairs:
            first, second = self.dimensions
            terms = [
                _key_condition(first, [a], types) & _key_condition(second, [b], types) for a, b in self.pairs
            ]
            return reduce(lambda x, y: x | y, terms)
        return reduce(lambda x, y: x & y, (_dimension_condition(d, types) for d in self.dimensions))

    def parts(self, types: dict[str, DataType]) -> list[tuple[dict[str, str], Column]]:
        """Each partition of the run (its key per dimension) with the condition selecting its rows."""
        if self.pairs:
            first, second = self.dimensions
            return [
                (
                    {first.dimension.name: a, second.dimension.name: b},
                    _key_condition(first, [a], types) & _key_condition(second, [b], types),
                )
                for a, b in self.pairs
            ]
        combos: list[tuple[dict[str, str], Column]] = []
        for dim in self.dimensions:
            name = dim.dimension.name
            conditions = [(k, _key_condition(dim, [k], types)) for k in dim.keys]
            if not combos:
                combos = [({name: k}, c) for k, c in conditions]
            else:
                combos = [({**keys, name: k}, cond & c) for keys, cond in combos for k, c in conditions]
        return combos


def _column(dim: DimensionSlice, types: dict[str, DataType]) -> tuple[Column, DataType]:
    name = dim.dimension.column
    if name.lower() not in types:
        raise ValueError(
            f"partition column {name!r} (dimension {dim.dimension.name!r}) is not a column of the result "
            f"({', '.join(types)})"
        )
    return F.col(name), types[name.lower()]


def _dimension_condition(dim: DimensionSlice, types: dict[str, DataType]) -> Column:
    if dim.is_time and dim.start is not None and dim.end is not None:
        col, kind = _column(dim, types)
        if isinstance(kind, DateType):
            return (col >= F.lit(dim.start.date())) & (col < F.lit(dim.end.date()))
        start = F.lit(dim.start.isoformat()).cast(kind)
        end = F.lit(dim.end.isoformat()).cast(kind)
        return (col >= start) & (col < end)
    return _key_condition(dim, dim.keys, types)


def _key_condition(dim: DimensionSlice, keys: list[str], types: dict[str, DataType]) -> Column:
    col, kind = _column(dim, types)
    if dim.is_time:
        single = DimensionSlice(dim.dimension, keys, *window(dim.dimension, keys[0]))
        return _dimension_condition(single, types)
    return col.isin(*[F.lit(k).cast(kind) for k in keys])


def window(dimension: PartitionDimension, key: str) -> tuple[datetime, datetime]:
    """The [start, end) of one time-window key, in the dimension's zone."""
    from zoneinfo import ZoneInfo

    from dateutil.relativedelta import relativedelta

    zone = ZoneInfo(dimension.timezone)
    fmt = {"hourly": "%Y-%m-%d-%H:%M", "daily": "%Y-%m-%d", "monthly": "%Y-%m-%d"}[dimension.type]
    start = datetime.strptime(key, fmt).replace(tzinfo=zone)
    step = {
        "hourly": relativedelta(hours=1),
        "daily": relativedelta(days=1),
        "monthly": relativedelta(months=1),
    }
    return start, start + step[dimension.type]
