"""Flare functions that change the shape of the rows: dedupe, explode, parse, pivot, unpivot."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

import sqlglot
from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from flare_assets.spec.actions import lowercase
from flare_assets.spec.avro import avro_to_spark
from flare_assets.spec.functions.base import ColumnFunction, FunctionSpec, added, find, removed

# Aggregates a two-phase pivot can apply again to its own partial results.
REAGGREGATES = (exp.Sum, exp.Min, exp.Max)


class StructureFunction(FunctionSpec):
    FAMILY: ClassVar[str] = "structure"


def projections(expression: str) -> list[exp.Expression]:
    """The comma-separated Spark SQL expressions in `expression`; ValueError when they do not parse."""
    try:
        tree = sqlglot.parse_one(f"SELECT {expression}", read="spark")
    except sqlglot.errors.ParseError as exc:
        raise ValueError(
            f"{expression!r} is not a Spark SQL expression: {exc.errors[0]['description']}"
        ) from exc
    if not isinstance(tree, exp.Select) or tree.args.get("from"):
        raise ValueError(f"{expression!r} is not a Spark SQL expression")
    return list(tree.expressions)


def referenced(expressions: list[exp.Expression]) -> list[str]:
    """Top-level columns the expressions read (`a` for `a.b.c`), lambda variables left out."""
    out: list[str] = []
    for expression in expressions:
        for column in expression.find_all(exp.Column):
            root = column.parts[0].name if column.parts else column.name
            if root and root != "*" and find(out, root) is None:
                out.append(root)
    return out


class DropDuplicates(StructureFunction):
    """One row of each group of rows equal on `columns` (on every column when none are listed)."""

    name: Literal["drop_duplicates"]
    columns: list[str] = Field(
        default_factory=list, description="the columns rows are compared on (default: every column)"
    )

    def reads(self) -> list[str]:
        return list(self.columns)


class Flatten(StructureFunction, ColumnFunction):
    """One row per element of an array (or entry of a map); rows with a null or empty array are dropped."""

    name: Literal["flatten"]


class FlattenOuter(Flatten):
    """flatten that keeps rows whose array is null or empty, with null in the flattened column."""

    name: Literal["flatten_outer"]  # type: ignore[assignment]


class ParseAsJson(StructureFunction, ColumnFunction):
    """JSON text parsed into a struct with a Spark or an Avro schema (null when the text is not JSON)."""

    name: Literal["parse_as_json"]
    spark_schema: str | dict[str, Any] | None = Field(
        default=None, description="the struct's schema as Spark JSON or DDL (this or avroSchema)"
    )
    avro_schema: str | dict[str, Any] | None = Field(
        default=None, description="the struct's schema as an Avro record (this or sparkSchema)"
    )

    @field_validator("spark_schema")
    @classmethod
    def _spark_schema(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"sparkSchema looks like JSON but does not parse: {exc}") from exc
        if isinstance(value, dict) and value.get("type") != "struct":
            raise ValueError("sparkSchema JSON must be a struct: {'type': 'struct', 'fields': [...]}")
        if isinstance(value, str) and not value.strip():
            raise ValueError("sparkSchema is empty; write a Spark schema JSON or DDL ('a INT, b STRING')")
        return value

    @field_validator("avro_schema")
    @classmethod
    def _avro_schema(cls, value: Any) -> Any:
        avro_to_spark(value)
        return value

    @model_validator(mode="after")
    def _one_schema(self) -> ParseAsJson:
        if (self.spark_schema is None) == (self.avro_schema is None):
            raise ValueError(
                "parse_as_json takes exactly one of sparkSchema (Spark JSON or DDL) and avroSchema"
            )
        return self

    def schema(self) -> str | dict[str, Any]:
        """The Spark schema: a StructType JSON dict, or DDL text."""
        return avro_to_spark(self.avro_schema) if self.avro_schema is not None else self.spark_schema  # type: ignore[return-value]


class Pivot(StructureFunction):
    """Rows to columns: per `groupBy` group, one column per value of `column` holding the aggregate."""

    name: Literal["pivot"]
    group_by: list[str] = Field(min_length=1, description="the columns each result row is grouped by")
    column: str = Field(description="the column whose values become columns")
    values: list[Any] | None = Field(
        default=None,
        description=("the values that become columns (default: every value found, read from the data)"),
    )
    aggregate_expression: str = Field(description="the aggregate(s) each new column holds (`sum(amount)`)")
    approach: Literal["two-phase"] | None = Field(
        default=None, description="two-phase: aggregate per value first, then pivot (sum, min or max only)"
    )

    _approach = field_validator("approach", mode="before")(lowercase)

    @field_validator("aggregate_expression")
    @classmethod
    def _aggregate(cls, value: str) -> str:
        projections(value)
        return value

    @model_validator(mode="after")
    def _two_phase(self) -> Pivot:
        if self.approach != "two-phase":
            return self
        for item in projections(self.aggregate_expression):
            inner = item.this if isinstance(item, exp.Alias) else None
            ok = (
                isinstance(inner, REAGGREGATES)
                and isinstance(inner.this, exp.Column)
                and inner.this.name.lower() == item.alias.lower()
            )
            if not ok:
                raise ValueError(
                    "approach two-phase aggregates twice, so each aggregate must be sum, min or max of a"
                    f" column aliased to its own name (sum(Amount) as Amount); got {item.sql('spark')!r}"
                )
        return self

    def reads(self) -> list[str]:
        out = [*self.group_by, self.column]
        for name in referenced(projections(self.aggregate_expression)):
            if find(out, name) is None:
                out.append(name)
        return out

    def columns_after(self, columns: list[str]) -> list[str] | None:
        if self.values is None:
            return None
        aggregates = projections(self.aggregate_expression)
        names = [str(v) for v in self.values]
        if len(aggregates) > 1:
            names = [f"{v}_{a.alias_or_name}" for v in names for a in aggregates]
        return [find(columns, c) or c for c in self.group_by] + names


class Unfurl(StructureFunction):
    """Columns from a Spark SQL expression (`explode(items) as item`, `address.*`); taken names replaced."""

    name: Literal["unfurl"]
    expression: str = Field(
        description="one Spark SQL select expression (`explode(items) as item`, `address.*`)"
    )

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str) -> str:
        if len(projections(value)) != 1:
            raise ValueError(f"unfurl takes one expression; got {value!r} (use one unfurl per expression)")
        return value

    def reads(self) -> list[str]:
        return referenced(projections(self.expression))

    def columns_after(self, columns: list[str]) -> list[str] | None:
        (item,) = projections(self.expression)
        if isinstance(item, exp.Alias):
            return added(columns, item.alias)
        if isinstance(item, exp.Aliases):
            return added(columns, *(i.name for i in item.expressions))
        return None


class Unpivot(StructureFunction):
    """Columns to rows: each `pivotColumns` column gives a row of (its name, its value), `columns` kept."""

    name: Literal["unpivot"]
    columns: list[str] | Literal["*"] = Field(
        description="the columns kept on every row (`*`: all but pivotColumns)"
    )
    pivot_columns: list[str] | Literal["*"] = Field(
        description="the columns turned into rows (`*`: all but columns)"
    )
    key_column_name: str = Field(description="the new column holding the unpivoted column's name")
    value_column_name: str = Field(description="the new column holding its value")

    @field_validator("columns", "pivot_columns", mode="before")
    @classmethod
    def _star(cls, value: Any) -> Any:
        if value == ["*"] or (isinstance(value, str) and value.strip() == "*"):
            return "*"
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_star(self) -> Unpivot:
        if self.columns == "*" and self.pivot_columns == "*":
            raise ValueError('unpivot: columns and pivotColumns cannot both be "*"; list the columns of one')
        if self.pivot_columns == []:
            raise ValueError("unpivot: pivotColumns is empty; list the columns to turn into rows")
        return self

    def split(self, columns: list[str]) -> tuple[list[str], list[str]]:
        """(kept columns, unpivoted columns) among `columns`."""
        if self.columns == "*":
            values = [find(columns, c) or c for c in self.pivot_columns]
            return removed(columns, *values), values
        ids = [find(columns, c) or c for c in self.columns]
        if self.pivot_columns == "*":
            return ids, removed(columns, *ids)
        return ids, [find(columns, c) or c for c in self.pivot_columns]

    def problems(self, columns: list[str]) -> list[str]:
        problems = super().problems(columns)
        ids, values = self.split(columns)
        if not problems and not values:
            problems.append(f"unpivot: no columns left to unpivot once {', '.join(ids)} are kept")
        overlap = [c for c in values if find(ids, c) is not None]
        if overlap:
            problems.append(f"unpivot: {', '.join(overlap)} both kept and unpivoted; name each in one list")
        return problems

    def reads(self) -> list[str]:
        return [c for part in (self.columns, self.pivot_columns) if part != "*" for c in part]

    def columns_after(self, columns: list[str]) -> list[str]:
        ids, _ = self.split(columns)
        return [*ids, self.key_column_name, self.value_column_name]


FUNCTIONS: tuple[type[FunctionSpec], ...] = (
    DropDuplicates,
    Flatten,
    FlattenOuter,
    ParseAsJson,
    Pivot,
    Unfurl,
    Unpivot,
)
