"""Flare functions that change the values of columns, or add a column computed from others."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import sqlglot
from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from flare_assets.spec.actions import lowercase
from flare_assets.spec.functions.base import ColumnFunction, FunctionSpec, Sed, added, spark_type


class ValuesFunction(FunctionSpec):
    FAMILY: ClassVar[str] = "values"


CASES = {"lowercase": "lower", "uppercase": "upper", "titlecase": "title"}


class ChangeCase(ValuesFunction):
    """A column's values in lower, upper or title case."""

    name: Literal["change_case"]
    case: Literal["lower", "upper", "title"] = Field(description="lower, upper or title")
    column: str = Field(description="the column whose values change")

    @field_validator("case", mode="before")
    @classmethod
    def _case(cls, value: Any) -> Any:
        value = lowercase(value)
        return CASES.get(value, value)

    def reads(self) -> list[str]:
        return [self.column]


class CutCharacter(ValuesFunction, ColumnFunction):
    """Characters `startIndex` to `endIndex` (1-based, inclusive), into `asColumn` or in place."""

    name: Literal["cut_character"]
    start_index: int = Field(ge=1, description="the first character kept (1-based)")
    end_index: int = Field(ge=1, description="the last character kept (inclusive)")

    @model_validator(mode="after")
    def _range(self) -> CutCharacter:
        if self.end_index < self.start_index:
            raise ValueError(f"endIndex {self.end_index} is before startIndex {self.start_index}")
        return self


class _Codec(ValuesFunction, ColumnFunction):
    algo: Literal["base32", "base64", "hex"] = Field(description="the encoding: base32, base64 or hex")

    _algo = field_validator("algo", mode="before")(lowercase)


class Decode(_Codec):
    """base32, base64 or hex text (RFC 4648) decoded to a string, into `asColumn` or in place."""

    name: Literal["decode"]


class Encode(_Codec):
    """Values encoded as base32, base64 or hex (RFC 4648), into `asColumn` or in place."""

    name: Literal["encode"]


class FillNullOrEmpty(ValuesFunction):
    """Null or empty values of each listed column replaced: `columns: {column: value}`."""

    name: Literal["fill_null_or_empty"]
    columns: dict[str, str] = Field(
        min_length=1, description="column name to the value its null or empty values become"
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scalar_text(v) for k, v in value.items()}
        return value

    def reads(self) -> list[str]:
        return list(self.columns)


def scalar_text(value: Any) -> Any:
    """A YAML number or boolean as the text a manifest wrote (`0`, `true`); anything else as it is."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value


class FindAndReplace(ValuesFunction):
    """A sed expression `s/regex/replacement/` (flags g, i) applied to a column's values."""

    name: Literal["find_and_replace"]
    column: str = Field(description="the column whose values change")
    sed_expression: str = Field(
        description=("`s/regex/replacement/flags`: g replaces every match, else the first; i ignores case")
    )

    @field_validator("sed_expression")
    @classmethod
    def _sed(cls, value: str) -> str:
        Sed.parse(value)
        return value

    def reads(self) -> list[str]:
        return [self.column]

    def java(self) -> tuple[str, str]:
        """Pattern and replacement for Spark's regexp_replace, which replaces every match. Without the
        g flag the pattern is anchored at the start and also takes the shortest text before the first
        match (group 1, put back unchanged), so only that match is replaced; the expression's own
        groups move up by two."""
        sed = Sed.parse(self.sed_expression)
        pattern, replacement = sed.java()
        if sed.every:
            return pattern, replacement
        flags = "(?i)" if sed.ignore_case else ""
        inner = re.sub(r"(?<!\\)\\(\d)", lambda m: f"\\{int(m[1]) + 2}", sed.pattern)
        shifted = re.sub(r"(?<!\\)\$(\d)", lambda m: f"${int(m[1]) + 2}", replacement)
        return f"{flags}^((?s:.*?))({inner})", "$1" + shifted


HASH_ALGOS = ("MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512")


class Hash(ValuesFunction):
    """A column's values replaced by their MD5, SHA-1, SHA-256, SHA-384 or SHA-512 hex digest."""

    name: Literal["hash"]
    column: str = Field(description="the column hashed in place")
    algo: Literal["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"] = Field(description="the digest algorithm")

    @field_validator("algo", mode="before")
    @classmethod
    def _algo(cls, value: Any) -> Any:
        if isinstance(value, str):
            compact = value.strip().upper().replace("-", "").replace("_", "")
            return next((a for a in HASH_ALGOS if a.replace("-", "") == compact), value)
        return value

    def reads(self) -> list[str]:
        return [self.column]


class MaskNumber(ValuesFunction):
    """Values masked by `pattern`: `#` keeps the character there, any other character replaces it."""

    name: Literal["mask_number"]
    column: str = Field(description="the column masked in place")
    pattern: str = Field(
        min_length=1,
        description="one character per character of the value: `#` keeps it, any other replaces it",
    )

    def reads(self) -> list[str]:
        return [self.column]

    def pieces(self) -> list[tuple[int, int] | str]:
        """The pattern as runs: (start, length) of a kept run (1-based), or the literal text of a masked
        run."""
        runs: list[tuple[int, int] | str] = []
        for match in re.finditer(r"#+|[^#]+", self.pattern):
            text = match.group()
            runs.append((match.start() + 1, len(text)) if text[0] == "#" else text)
        return runs


class Merge(ValuesFunction):
    """`asColumn` holding the listed columns' values joined by `separator` (nulls skipped)."""

    name: Literal["merge"]
    separator: str = Field(description="the text put between two values")
    columns: list[str] = Field(min_length=2, description="the columns joined, in this order (at least two)")
    as_column: str = Field(description="the column that gets the joined text")

    def reads(self) -> list[str]:
        return list(self.columns)

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, self.as_column)


class Trim(ValuesFunction):
    """Whitespace removed from both ends (`trim`), the start (`ltrim`) or the end (`rtrim`) of values."""

    name: Literal["trim"]
    column: str = Field(description="the column trimmed in place")
    method: Literal["trim", "ltrim", "rtrim"] = Field(
        default="trim", description="trim: both ends; ltrim: the start; rtrim: the end"
    )

    _method = field_validator("method", mode="before")(lowercase)

    def reads(self) -> list[str]:
        return [self.column]


class SetType(ValuesFunction):
    """Each listed column cast to a Spark type: `columns: {column: type}`."""

    name: Literal["set_type"]
    columns: dict[str, str] = Field(min_length=1, description="column name to the Spark type it is cast to")

    @field_validator("columns")
    @classmethod
    def _types(cls, value: dict[str, str]) -> dict[str, str]:
        return {column: spark_type(type_) for column, type_ in value.items()}

    def reads(self) -> list[str]:
        return list(self.columns)


class GenerateUuid(ValuesFunction):
    """`asColumn` holding a random UUID for each row."""

    name: Literal["generate_uuid"]
    as_column: str = Field(description="the column that gets a UUID per row")

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, self.as_column)


class SetVariable(ValuesFunction):
    """`column` set to a SQL expression's value; aggregates in it are taken over all rows."""

    name: Literal["set_variable"]
    column: str = Field(description="the column set (created when absent)")
    expression: str = Field(
        min_length=1, description="a Spark SQL expression; aggregates in it are taken over all rows"
    )

    @field_validator("expression")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_expression(value)
        return value

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, self.column)

    def aggregates(self, prefix: str) -> tuple[list[str], str]:
        """The expression's aggregates (outside any window), as SQL, and the expression with each
        of them replaced by a column `{prefix}{i}` holding its value; no aggregates: ([], expression)."""
        found: list[str] = []

        def replace(node: exp.Expression) -> exp.Expression:
            inner = node.this if isinstance(node, exp.Filter) else node
            if isinstance(inner, exp.AggFunc) and node.find_ancestor(exp.Window) is None:
                found.append(node.sql(dialect="spark"))
                return exp.column(f"{prefix}{len(found) - 1}")
            return node

        tree = parse_expression(self.expression).transform(replace)
        if not found:
            return [], self.expression
        return found, tree.sql(dialect="spark")


def parse_expression(text: str) -> exp.Expression:
    """A Spark SQL expression's tree; ValueError naming the parser's reason."""
    try:
        tree = sqlglot.parse_one(text, read="spark")
    except sqlglot.errors.SqlglotError as exc:
        errors = getattr(exc, "errors", None)
        reason = errors[0]["description"] if errors else str(exc)
        raise ValueError(f"{text!r} is not a Spark SQL expression: {reason}") from exc
    if tree is None or isinstance(tree, exp.Query):
        raise ValueError(f"{text!r} is not a Spark SQL expression")
    return tree


class IncrementVariable(ValuesFunction):
    """A numeric column's values plus one."""

    name: Literal["increment_variable"]
    column: str = Field(description="the numeric column incremented in place")

    def reads(self) -> list[str]:
        return [self.column]


FUNCTIONS: tuple[type[FunctionSpec], ...] = (
    ChangeCase,
    CutCharacter,
    Decode,
    Encode,
    FillNullOrEmpty,
    FindAndReplace,
    GenerateUuid,
    Hash,
    IncrementVariable,
    MaskNumber,
    Merge,
    SetType,
    SetVariable,
    Trim,
)
