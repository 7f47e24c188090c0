"""Flare functions that read, convert and format dates and timestamps."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator

from flare_assets.spec.functions.base import ColumnFunction, FunctionSpec, added

DATE_GROUPS = ("year", "month", "day")
# Pattern letters Spark's datetime formatter takes (week-based letters Y w u W e c are refused by it).
FORMAT_LETTERS = set("GyDMLdQqEFaHhKkmsSVzOXxZ")
# Three-letter zone ids Java (and so Spark) takes besides region ids.
JAVA_SHORT_ZONES = set(
    "ACT AET AGT ART AST BET BST CAT CNT CST CTT EAT ECT IET IST JST MIT NET NST PLT PNT PRT PST SST VST"
    " EST MST HST".split()
)


class DatesFunction(FunctionSpec):
    FAMILY: ClassVar[str] = "dates"


def group_indexes(rule: str) -> dict[str, int]:
    """The number of each named capturing group of a Java regex, counted as Java counts groups
    (named and unnamed, in the order of their opening parenthesis)."""
    names: dict[str, int] = {}
    count, depth, i = 0, 0, 0
    while i < len(rule):
        char = rule[i]
        if rule.startswith("\\Q", i):
            end = rule.find("\\E", i + 2)
            i = len(rule) if end < 0 else end + 2
            continue
        if char == "\\":
            i += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        elif char == "(" and not depth:
            named = re.match(r"\(\?P?<([A-Za-z][A-Za-z0-9]*)>", rule[i:])
            if named or not rule.startswith("(?", i):
                count += 1
            if named:
                names[named.group(1)] = count
        i += 1
    return names


def unwrapped(rule: str) -> str:
    """A rule without the surrounding 【 】 (or [ ] around named groups) that the Flare docs write."""
    text = rule.strip()
    if text.startswith("【") and text.endswith("】"):
        return text[1:-1]
    if text.startswith("[") and text.endswith("]") and "(?<" in text:
        return text[1:-1]
    return text


def checked_rules(rules: Any, needed: tuple[str, ...]) -> list[str]:
    if isinstance(rules, str):
        rules = [rules]
    out = []
    for rule in rules:
        text = unwrapped(str(rule)).replace("(?P<", "(?<")
        python = re.sub(r"\(\?<([A-Za-z][A-Za-z0-9]*)>", r"(?P<\1>", text)
        try:
            re.compile(python)
        except re.error as exc:
            if "bad escape \\p" not in str(exc):
                raise ValueError(f"rule {rule!r} is not a regular expression: {exc}") from exc
        missing = [g for g in needed if g not in group_indexes(text)]
        if missing:
            raise ValueError(
                f"rule {rule!r} has no named group {', '.join(missing)}; a rule names its groups"
                " (?<year>..), (?<month>..), (?<day>..); for times also hour, minute, second, fraction, zone"
            )
        out.append(text)
    return out


class AnyDate(DatesFunction, ColumnFunction):
    """Text in any common date layout (or a timestamp) as a date; values no layout fits become null."""

    name: Literal["any_date"]
    rules: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("rules", "rule"),
        description="regexes naming groups year, month and day, tried before the common layouts",
    )

    @field_validator("rules", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> list[str]:
        return checked_rules(value or [], DATE_GROUPS)


class AnyTimestamp(DatesFunction, ColumnFunction):
    """Text in any common date-time layout as a timestamp, shown as wall-clock time in `timezone`."""

    name: Literal["any_timestamp"]
    timezone: str = Field(
        default="UTC",
        description="the time zone whose wall-clock time the timestamp shows (region id or offset)",
    )
    rules: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("rules", "rule"),
        description="regexes naming groups year, month, day (hour, minute, second ...), tried first",
    )

    @field_validator("rules", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> list[str]:
        return checked_rules(value or [], DATE_GROUPS)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if re.fullmatch(r"(UTC|GMT)?[+-]\d{1,2}(:\d{2})?", value) or value in JAVA_SHORT_ZONES:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not a time zone; write a region id (Asia/Kolkata, America/New_York, UTC)"
                " or an offset (+05:30)"
            ) from exc
        return value


class DiffDate(DatesFunction):
    """Days from `columnB` to `columnA` (A minus B), each read as a date the way any_date reads it."""

    name: Literal["diff_date"]
    column_a: str = Field(description="the date counted to (A in A minus B)")
    column_b: str = Field(description="the date counted from (B)")
    as_column: str = Field(description="the column that gets the number of days")

    def reads(self) -> list[str]:
        return [self.column_a, self.column_b]

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, self.as_column)


class EpochToTimestamp(DatesFunction, ColumnFunction):
    """Seconds since 1970-01-01 UTC (number or text) as a timestamp."""

    name: Literal["epoch_to_timestamp"]


def datetime_format(value: str) -> str:
    """A Spark datetime pattern: letters outside quotes must be ones Spark's formatter takes."""
    unquoted = re.sub(r"'[^']*'?", "", value)
    bad = sorted({c for c in unquoted if c.isalpha() and c not in FORMAT_LETTERS})
    if bad:
        raise ValueError(
            f"{value!r} uses pattern letters {', '.join(bad)} that Spark does not take; allowed:"
            f" {' '.join(sorted(FORMAT_LETTERS))} (quote literal text: 'T')"
        )
    return value


class FormatDate(DatesFunction, ColumnFunction):
    """A date or timestamp (or text any_timestamp reads) as text in a Spark datetime pattern."""

    name: Literal["format_date"]
    format: str = Field(
        validation_alias=AliasChoices("format", "refformat", "refFormat"),
        description="a Spark datetime pattern (yyyy-MM-dd); also accepted as refFormat",
    )

    _format = field_validator("format")(datetime_format)


class FormatUnixDate(DatesFunction, ColumnFunction):
    """Seconds since 1970-01-01 UTC as text in a Spark datetime pattern (UTC wall-clock time)."""

    name: Literal["format_unix_date"]
    format: str = Field(default="yyyy-MM-dd HH:mm:ss", description="the Spark datetime pattern of the text")

    _format = field_validator("format")(datetime_format)


FUNCTIONS: tuple[type[FunctionSpec], ...] = (
    AnyDate,
    AnyTimestamp,
    DiffDate,
    EpochToTimestamp,
    FormatDate,
    FormatUnixDate,
)
