"""Run config classes as op config: Dagster infers a Config class's schema for every op that takes it
as an argument, which with a thousand assets and maintenance jobs is a large part of loading the
code location. Here the schema is inferred once per class and given to each op, and the op builds
the same Config object from its config."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from dagster import Config, Field

C = TypeVar("C", bound=Config)


@cache
def config_schema(cls: type[Config]) -> Any:
    """The op config schema Dagster infers for an op argument annotated with `cls`, for `@op`."""
    return cls.to_config_schema()


@cache
def config_fields(cls: type[Config]) -> dict[str, Field]:
    """Its fields, for `@multi_asset` (which takes a mapping and gives the same schema)."""
    return cls.to_fields_dict()


def op_config(cls: type[C], context: Any) -> C:
    """The `cls` instance Dagster would pass to such an argument (defaults already filled)."""
    ctx = getattr(context, "op_execution_context", context)
    return cls(**ctx.op_config)
