"""Flare functions that add, remove or rename columns (the rows stay as they are)."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from flare_assets.spec.actions import lowercase
from flare_assets.spec.functions.base import (
    FunctionSpec,
    Sed,
    added,
    find,
    removed,
    renamed,
)

ADD_COLUMN_TYPES = (
    *("string", "boolean", "byte", "short", "int", "long"),
    *("float", "double", "decimal", "date", "timestamp"),
)


class ColumnsFunction(FunctionSpec):
    FAMILY: ClassVar[str] = "columns"


class AddColumn(ColumnsFunction):
    """A new column holding one value of the given type."""

    name: Literal["add_column"]
    column: str = Field(description="the new column's name; it must not exist yet")
    value: Any = Field(description="the value every row gets")
    type: str = Field(
        default="string",
        description="the Spark type the value is cast to (string, int, decimal(10,2), date ...)",
    )

    _lower = field_validator("type", mode="before")(lowercase)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value.split("(")[0] not in ADD_COLUMN_TYPES:
            allowed = ", ".join(ADD_COLUMN_TYPES)
            raise ValueError(f"{value!r} is not a type add_column takes; allowed: {allowed}")
        return value

    def problems(self, columns: list[str]) -> list[str]:
        if find(columns, self.column) is not None:
            return [f"add_column: {self.column!r} is already a column; use set_column to change its values"]
        return []

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, self.column)


class ChangeColumnCase(ColumnsFunction):
    """Every column name in lower or upper case."""

    name: Literal["change_column_case"]
    case: Literal["lower", "upper"] = Field(description="lower or upper")

    _case = field_validator("case", mode="before")(lowercase)

    def columns_after(self, columns: list[str]) -> list[str]:
        return [c.lower() if self.case == "lower" else c.upper() for c in columns]


def cleansed(column: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", column.strip().lower())


class CleanseColumnNames(ColumnsFunction):
    """Names trimmed, lower-cased, every character outside [a-z0-9_] turned into `_`."""

    name: Literal["cleanse_column_names"]

    def columns_after(self, columns: list[str]) -> list[str]:
        return [cleansed(c) for c in columns]


class ColumnsReplace(ColumnsFunction):
    """A sed expression applied to every column name."""

    name: Literal["columns_replace"]
    sed_expression: str = Field(description="`s/regex/replacement/` (flags g, i) applied to each column name")

    @field_validator("sed_expression")
    @classmethod
    def _sed(cls, value: str) -> str:
        Sed.parse(value)
        return value

    def columns_after(self, columns: list[str]) -> list[str]:
        sed = Sed.parse(self.sed_expression)
        return [sed.apply(c) for c in columns]


class Copy(ColumnsFunction):
    """`toColumn` takes `fromColumn`'s values (created when absent)."""

    name: Literal["copy"]
    from_column: str = Field(description="the column copied")
    to_column: str = Field(description="the column that gets the copy (created when absent)")

    def reads(self) -> list[str]:
        return [self.from_column]

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, self.to_column)


class Drop(ColumnsFunction):
    """Removes the listed columns."""

    name: Literal["drop"]
    columns: list[str] = Field(min_length=1, description="the columns removed")

    def reads(self) -> list[str]:
        return list(self.columns)

    def columns_after(self, columns: list[str]) -> list[str]:
        return removed(columns, *self.columns)


class Rename(ColumnsFunction):
    """`column` is called `asColumn` from here on."""

    name: Literal["rename"]
    column: str = Field(description="the column renamed")
    as_column: str = Field(description="its new name")

    def reads(self) -> list[str]:
        return [self.column]

    def columns_after(self, columns: list[str]) -> list[str]:
        return renamed(columns, {self.column: self.as_column})


class RenameAll(ColumnsFunction):
    """Several renames at once: `columns: {old: new}`."""

    name: Literal["rename_all"]
    columns: dict[str, str] = Field(
        min_length=1, description="old name to new name, one entry per column renamed"
    )

    def reads(self) -> list[str]:
        return list(self.columns)

    def columns_after(self, columns: list[str]) -> list[str]:
        return renamed(columns, self.columns)


class Select(ColumnsFunction):
    """Keeps the listed columns, in that order."""

    name: Literal["select"]
    columns: list[str] = Field(min_length=1, description="the columns kept, in this order")

    def reads(self) -> list[str]:
        return list(self.columns)

    def columns_after(self, columns: list[str]) -> list[str]:
        return [find(columns, c) or c for c in self.columns]


class SetColumn(ColumnsFunction):
    """Every value of an existing column replaced by `value` (cast to the column's type)."""

    name: Literal["set_column"]
    column: str = Field(description="the existing column overwritten")
    value: Any = Field(description="the value every row gets, cast to the column's type")

    def reads(self) -> list[str]:
        return [self.column]


def snake(column: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column.strip())
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return re.sub(r"[\s\-]+", "_", text).lower()


class SnakeCase(ColumnsFunction):
    """camelCase, PascalCase and UPPER names in snake_case."""

    name: Literal["snake_case"]

    def columns_after(self, columns: list[str]) -> list[str]:
        return [snake(c) for c in columns]


class Swap(ColumnsFunction):
    """The two columns trade names (and so their places keep their values' order)."""

    name: Literal["swap"]
    column_a: str = Field(description="one column of the pair")
    column_b: str = Field(description="the other column of the pair")

    def reads(self) -> list[str]:
        return [self.column_a, self.column_b]

    def columns_after(self, columns: list[str]) -> list[str]:
        a, b = find(columns, self.column_a), find(columns, self.column_b)
        return [b if c == a else a if c == b else c for c in columns]  # type: ignore[misc]


FUNCTIONS: tuple[type[FunctionSpec], ...] = (
    AddColumn,
    ChangeColumnCase,
    CleanseColumnNames,
    ColumnsReplace,
    Copy,
    Drop,
    Rename,
    RenameAll,
    Select,
    SetColumn,
    SnakeCase,
    Swap,
)
