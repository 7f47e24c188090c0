"""What every Flare function model shares: strict keys, camelCase aliases, and the columns it
needs and leaves, so a step's function chain is checked against its columns before Spark starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, field_validator

from flare_assets.spec.actions import lowercase
from flare_assets.spec.base import Strict

SPARK_TYPES = (
    "string",
    "boolean",
    "byte",
    "tinyint",
    "short",
    "smallint",
    "int",
    "integer",
    "long",
    "bigint",
    "float",
    "double",
    "decimal",
    "date",
    "timestamp",
    "timestamp_ntz",
    "binary",
)


class FunctionSpec(Strict):
    """One entry of a step's `functions` list. Subclasses set `name` to a Literal of their Flare name
    and `FAMILY` to the docs page section they belong to."""

    FAMILY: ClassVar[str] = ""
    name: Any

    _lower = field_validator("name", mode="before")(lowercase)

    def reads(self) -> list[str]:
        """Columns that must exist in the function's input."""
        return []

    def problems(self, columns: list[str]) -> list[str]:
        """What stops this function on input `columns`: the same check runs at load (when a step's
        columns are known from its SQL) and at run time (on the real schema)."""
        missing = [c for c in self.reads() if find(columns, c) is None]
        return [f"{self.name}: no column {c!r}; columns: {', '.join(columns)}" for c in missing]

    def columns_after(self, columns: list[str]) -> list[str] | None:
        """The columns after this function, given those before; None when they depend on the data
        (a pivot's values), which ends the static check of the chain."""
        return list(columns)


class ColumnFunction(FunctionSpec):
    """A function of one column whose result goes to `asColumn` (by default, the column itself)."""

    column: str = Field(description="the column read")
    as_column: str | None = Field(
        default=None, description="the column the result goes to (default: the column read, replaced)"
    )

    def reads(self) -> list[str]:
        return [self.column]

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, self.as_column or self.column)


def find(columns: list[str], name: str) -> str | None:
    """`name` among `columns` as Spark resolves it (case-insensitively); None when absent."""
    lowered = name.lower()
    return next((c for c in columns if c.lower() == lowered), None)


def added(columns: list[str], *names: str) -> list[str]:
    """Columns after adding or replacing `names` (a name already there keeps its place)."""
    out = list(columns)
    for name in names:
        if find(out, name) is None:
            out.append(name)
    return out


def removed(columns: list[str], *names: str) -> list[str]:
    lowered = {n.lower() for n in names}
    return [c for c in columns if c.lower() not in lowered]


def renamed(columns: list[str], mapping: dict[str, str]) -> list[str]:
    lowered = {k.lower(): v for k, v in mapping.items()}
    return [lowered.get(c.lower(), c) for c in columns]


def spark_type(value: str) -> str:
    """A Spark SQL type name (`int`, `decimal(10,2)`, `array<string>` ...), checked loosely here and
    exactly by Spark's parser at run time."""
    text = str(value).strip()
    base = text.split("(")[0].split("<")[0].strip().lower()
    if base not in SPARK_TYPES + ("array", "map", "struct"):
        allowed = ", ".join(SPARK_TYPES)
        raise ValueError(f"{value!r} is not a Spark type; allowed: {allowed} (and decimal(p,s))")
    return text


@dataclass(frozen=True)
class Sed:
    """A sed substitution `s/regex/replacement/flags` (any delimiter; flags g and i)."""

    pattern: str
    replacement: str  # sed form: \\1 for a group, & for the whole match
    every: bool
    ignore_case: bool

    @classmethod
    def parse(cls, text: str) -> Sed:
        if len(text) < 4 or text[0] != "s":
            raise ValueError(f"{text!r} is not a sed expression; write s/regex/replacement/ (flags g, i)")
        delim = text[1]
        parts = re.split(rf"(?<!\\){re.escape(delim)}", text[2:])
        if len(parts) != 3 or not parts[0] or set(parts[2]) - {"g", "i"}:
            raise ValueError(f"{text!r} is not a sed expression; write s/regex/replacement/ (flags g, i)")
        pattern, replacement = (p.replace("\\" + delim, delim) for p in parts[:2])
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{text!r}: the regex does not compile: {exc}") from exc
        return cls(pattern, replacement, "g" in parts[2], "i" in parts[2])

    def python(self) -> tuple[re.Pattern[str], str]:
        """The compiled pattern and replacement for Python's re.sub."""
        repl = re.sub(r"(?<!\\)&", r"\\g<0>", self.replacement)
        return re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0), repl

    def java(self) -> tuple[str, str]:
        """Pattern and replacement for Spark's regexp_replace (Java regex: $1, $0)."""
        repl = self.replacement.replace("$", "\\$")
        repl = re.sub(r"(?<!\\)&", "$0", repl)
        repl = re.sub(r"\\(\d)", r"$\1", repl)
        return ("(?i)" if self.ignore_case else "") + self.pattern, repl

    def apply(self, value: str) -> str:
        pattern, repl = self.python()
        return pattern.sub(repl, value, count=0 if self.every else 1)
