"""Manifest partitions as Dagster partitions definitions and backfill policies, and a run's
partition keys back as the engine's slice."""

from __future__ import annotations

from datetime import datetime

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
)

from flare_assets.engine.batch.partitions import DimensionSlice, PartitionSlice, window
from flare_assets.spec.model import PartitionDimension, Partitions

TIME_DEFINITIONS = {
    "hourly": HourlyPartitionsDefinition,
    "daily": DailyPartitionsDefinition,
    "monthly": MonthlyPartitionsDefinition,
}


def dimension_definition(dim: PartitionDimension) -> PartitionsDefinition:
    if dim.type in TIME_DEFINITIONS:
        end = datetime.fromisoformat(dim.end) if dim.end else None
        return TIME_DEFINITIONS[dim.type](
            start_date=datetime.fromisoformat(dim.start or ""), end_date=end, timezone=dim.timezone
        )
    if dim.type == "static":
        return StaticPartitionsDefinition(dim.values)
    return DynamicPartitionsDefinition(name=dim.name)


def partitions_definition(partitions: Partitions | None) -> PartitionsDefinition | None:
    if partitions is None:
        return None
    dims = partitions.dimensions
    if len(dims) == 1:
        return dimension_definition(dims[0])
    return MultiPartitionsDefinition({d.name: dimension_definition(d) for d in dims})


def backfill_policy(partitions: Partitions | None) -> BackfillPolicy | None:
    """Single-run by default: one Spark run (and one commit per table) replaces the whole range."""
    if partitions is None:
        return None
    if partitions.backfill == "multi-run":
        return BackfillPolicy.multi_run(partitions.max_partitions_per_run or 1)
    return BackfillPolicy.single_run()


def run_slice(context: AssetExecutionContext, partitions: Partitions) -> PartitionSlice:
    """The run's partition key, key range or (two dimensions) key combinations."""
    keys = list(context.partition_keys)
    if not keys:
        tags = context.run.tags
        asked = "...".join(tags.get(f"dagster/asset_partition_range_{end}", "?") for end in ("start", "end"))
        raise ValueError(
            f"partition range {asked} holds no partition: the range is reversed or empty; give "
            "START...END with START at or before END"
        )
    dims = partitions.dimensions
    if len(dims) == 1:
        dim = dims[0]
        if dim.type in TIME_DEFINITIONS:
            window_ = context.partition_time_window
            return PartitionSlice([DimensionSlice(dim, keys, window_.start, window_.end)])
        return PartitionSlice([DimensionSlice(dim, keys)])
    # MultiPartitionKey strings join the keys in dimension-name order
    order = sorted(d.name for d in dims)
    parts = [dict(zip(order, str(k).split("|"), strict=True)) for k in keys]
    pairs = [(p[dims[0].name], p[dims[1].name]) for p in parts]
    slices = []
    for i, dim in enumerate(dims):
        values = sorted({pair[i] for pair in pairs})
        if dim.type in TIME_DEFINITIONS:
            windows = [window(dim, v) for v in values]
            slices.append(DimensionSlice(dim, values, min(w[0] for w in windows), max(w[1] for w in windows)))
        else:
            slices.append(DimensionSlice(dim, values))
    return PartitionSlice(slices, pairs=pairs if len(pairs) > 1 else [])
