"""The housekeeping block of an output: partition retention, or archiving and compaction, by Spark SQL
expressions over the output's partitions (Smart Data Lake Builder's housekeeping modes).

Expressions are read here for syntax and for the names they use; Spark checks their result types
before the output is written (engine.housekeeping.check)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import sqlglot
from pydantic import Field, model_validator
from sqlglot import exp
from sqlglot.errors import SqlglotError

from flare_assets.spec.base import Strict

if TYPE_CHECKING:
    from flare_assets.spec.loader import LoadedJob
    from flare_assets.spec.model import OutputOptions

# A partition column of this name is filled with the run's number when the result lacks it.
RUN_ID = "run_id"

# The columns of SDLB's PartitionExpressionData, as expressions see them.
EXPRESSION_COLUMNS = ("feed", "application", "runId", "runStartTime", "dataObjectId", "elements")

MODES = {
    "retention": "retention",
    "partitionretentionmode": "retention",
    "archive": "archive_compaction",
    "compaction": "archive_compaction",
    "archivecompaction": "archive_compaction",
    "partitionarchivecompactionmode": "archive_compaction",
}
MODE_NAMES = "retention (PartitionRetentionMode), archiveCompaction (PartitionArchiveCompactionMode)"


class Housekeeping(Strict):
    """`retentionCondition` (boolean: false deletes the partition), or `archivePartitionExpression`
    (map<string,string>: new partition values) and/or `compactPartitionExpression` (boolean)."""

    type: Literal["retention", "archive_compaction"] | None = Field(
        default=None, description="retention or archiveCompaction (default: told from the expressions given)"
    )
    retention_condition: str | None = Field(
        default=None, description="a boolean expression per partition: false deletes the partition"
    )
    archive_partition_expression: str | None = Field(
        default=None, description="an expression per partition giving its new partition values (a map)"
    )
    compact_partition_expression: str | None = Field(
        default=None, description="a boolean expression per partition: true compacts its files"
    )

    @model_validator(mode="before")
    @classmethod
    def _mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            key = data["type"].replace("-", "").replace("_", "").lower()
            if key not in MODES:
                raise ValueError(f"type {data['type']!r} is not a housekeeping mode; allowed: {MODE_NAMES}")
            data = {**data, "type": MODES[key]}
        return data

    @model_validator(mode="after")
    def _shape(self) -> Housekeeping:
        moves = self.archive_partition_expression or self.compact_partition_expression
        if self.type is None:
            self.type = "retention" if self.retention_condition else "archive_compaction"
        if self.type == "retention":
            if not self.retention_condition:
                raise ValueError(
                    "retention needs retentionCondition (a boolean: false deletes the partition)"
                )
            if moves:
                raise ValueError(
                    "retention takes retentionCondition only; archivePartitionExpression and "
                    "compactPartitionExpression belong to archiveCompaction"
                )
        elif not moves:
            raise ValueError(
                "give retentionCondition, or archivePartitionExpression and/or compactPartitionExpression"
            )
        elif self.retention_condition:
            raise ValueError(
                "archiveCompaction takes no retentionCondition; use a second output or retention"
            )
        for key, text in self.expressions().items():
            parse_expression(text, key)
        return self

    def expressions(self) -> dict[str, str]:
        """The expressions given, by their manifest key."""
        pairs = {
            "retentionCondition": self.retention_condition,
            "archivePartitionExpression": self.archive_partition_expression,
            "compactPartitionExpression": self.compact_partition_expression,
        }
        return {k: v for k, v in pairs.items() if v}


def parse_expression(text: str, key: str) -> exp.Expression:
    """One Spark SQL expression over EXPRESSION_COLUMNS; a statement, an alias or an unknown name is
    an error naming what is allowed."""
    try:
        tree = sqlglot.parse_one(text, read="spark")
    except SqlglotError as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{key} {text!r} is not a Spark SQL expression: {reason}") from exc
    if tree is None or isinstance(tree, exp.Query | exp.DDL | exp.DML | exp.Alias):
        raise ValueError(f"{key} {text!r}: expected one expression (no SELECT, no alias)")
    lambdas = {p.name.lower() for lam in tree.find_all(exp.Lambda) for p in lam.expressions}
    allowed = {c.lower() for c in EXPRESSION_COLUMNS} | lambdas
    for column in tree.find_all(exp.Column):
        root = (column.table or column.name).lower()
        if root not in allowed:
            name = column.sql(dialect="spark")
            raise ValueError(f"{key} {text!r} reads {name!r}; allowed: {', '.join(EXPRESSION_COLUMNS)}")
    return tree


def named_partition_columns(text: str, key: str) -> set[str]:
    """Partition columns the expression names: elements.x, elements['x'], element_at(elements, 'x'),
    and the literal keys of map(...) (the new values an archive expression returns)."""
    tree = parse_expression(text, key)
    names = {c.name for c in tree.find_all(exp.Column) if c.table.lower() == "elements"}
    for node in tree.find_all(exp.Bracket):
        if isinstance(node.this, exp.Column) and node.this.name.lower() == "elements":
            names |= {e.name for e in node.expressions if isinstance(e, exp.Literal) and e.is_string}
    if key == "archivePartitionExpression":
        for node in tree.find_all(exp.VarMap):
            keys = node.args["keys"].expressions if isinstance(node.args.get("keys"), exp.Array) else []
            names |= {k.name for k in keys if isinstance(k, exp.Literal) and k.is_string}
    return names


def check_partition_columns(hk: Housekeeping, partition_columns: list[str]) -> list[str]:
    """Problems (`key: message`) with the columns the expressions name, for the loader to place."""
    problems = []
    if not partition_columns:
        return [
            "housekeeping: the output has no partition columns; give options.partitionBy (files) or "
            "identity fields in options.iceberg.partitionSpec (Iceberg)"
        ]
    known = {c.lower() for c in partition_columns}
    for key, text in hk.expressions().items():
        unknown = sorted(n for n in named_partition_columns(text, key) if n.lower() not in known)
        if unknown:
            problems.append(
                f"housekeeping.{key}: names {', '.join(unknown)}, not a partition column of the output; "
                f"allowed: {', '.join(partition_columns)}"
            )
    return problems


def partition_columns(options: OutputOptions, iceberg: bool) -> list[str]:
    """What `elements` holds: partitionBy for files, identity partitionSpec fields for Iceberg."""
    if iceberg:
        spec = options.partition_fields or []
        return [f.column for f in spec if f.type == "identity"]
    return list(options.partition_by or [])


def check_housekeeping(jobs: list[LoadedJob], depots: Any) -> list[str]:
    """Every housekeeping block fits its output: partitioned, on main, naming its partition columns."""
    problems: list[str] = []
    for lj in jobs:
        for oi, output in enumerate(lj.dag_job.job.outputs):
            hk = output.housekeeping
            if hk is None:
                continue
            where = lj.where(f"outputs[{oi}]")
            iceberg = depots.is_iceberg(output.address)
            options = output.options
            spec = options.partition_fields or []
            other = [f"{f.type}({f.column})" for f in spec if f.type != "identity"]
            if iceberg and other:
                problems.append(
                    f"{where}.housekeeping: works on identity partition fields; not on {', '.join(other)}"
                )
            if iceberg and options.branch:
                problems.append(f"{where}.housekeeping: keeps the main branch tidy; drop extraOptions.branch")
            problems += [
                f"{where}.{p}" for p in check_partition_columns(hk, partition_columns(options, iceberg))
            ]
    return problems
