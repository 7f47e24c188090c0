"""Jobs of a single op (maintenance, housekeeping, actions), built straight from their graph: the
same JobDefinition `@job` gives, without tracing a composition function for each of a thousand
tables."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import GraphDefinition, JobDefinition, OpDefinition


def one_op_job(
    name: str, op_def: OpDefinition, description: str, tags: Mapping[str, str] | None = None
) -> JobDefinition:
    graph = GraphDefinition(name=name, node_defs=[op_def], description=description)
    return graph.to_job(description=description, tags=tags)
