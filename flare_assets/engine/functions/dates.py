"""Functions that read, convert and format dates and timestamps.

Text is read with regular expressions whose named groups (year, month, day, hour, minute, second,
fraction, zone) are assembled with make_date/make_timestamp behind range checks, so no value raises,
whatever `spark.sql.ansi.enabled` and `spark.sql.legacy.timeParserPolicy` say.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DateType, NumericType, TimestampNTZType, TimestampType

from flare_assets.engine.functions.base import Transform, col, put
from flare_assets.spec.functions import dates as spec
from flare_assets.spec.functions.base import find
from flare_assets.spec.functions.dates import group_indexes

_NUM = r"(?<month>\d{1,2})"
_NAME = r"(?<month>[a-z]{3,9})\.?"
# The date layouts tried, in this order, after a function's own rules (or alone when it has none):
# day-first before month-first, so 01/03/2020 is 1 March and 03/25/2020 is 25 March. Each may carry
# a time (T or space, HH:mm[:ss[.fraction]], am/pm) and a zone (Z, UTC, GMT, +hh:mm, +hhmm).
DATE_LAYOUTS = (
    rf"(?<year>\d{{4}})-{_NUM}-(?<day>\d{{1,2}})",  # 2020-03-01, 2020-3-1
    rf"(?<year>\d{{4}})/{_NUM}/(?<day>\d{{1,2}})",  # 2020/03/01
    rf"(?<year>\d{{4}})\.{_NUM}\.(?<day>\d{{1,2}})",  # 2020.03.01
    r"(?<year>\d{4})(?<month>\d{2})(?<day>\d{2})",  # 20200301
    rf"(?<day>\d{{1,2}})-{_NUM}-(?<year>\d{{4}})",  # 01-03-2020
    rf"(?<day>\d{{1,2}})/{_NUM}/(?<year>\d{{4}})",  # 01/03/2020
    rf"(?<day>\d{{1,2}})\.{_NUM}\.(?<year>\d{{4}})",  # 01.03.2020
    rf"{_NUM}/(?<day>\d{{1,2}})/(?<year>\d{{4}})",  # 03/25/2020
    rf"{_NUM}-(?<day>\d{{1,2}})-(?<year>\d{{4}})",  # 03-25-2020
    rf"(?<day>\d{{1,2}})/{_NUM}/(?<year>\d{{2}})",  # 01/03/20
    rf"(?<day>\d{{1,2}})-{_NUM}-(?<year>\d{{2}})",  # 01-03-20
    rf"(?<day>\d{{1,2}})\.{_NUM}\.(?<year>\d{{2}})",  # 01.03.20
    rf"(?<day>\d{{1,2}})[ -]{_NAME}[ -]*(?<year>\d{{4}})",  # 01 Mar 2020, 1-March-2020
    rf"{_NAME}[ -](?<day>\d{{1,2}})(?:st|nd|rd|th)?,?[ -](?<year>\d{{4}})",  # Mar 01, 2020, March 1st 2020
    rf"(?<year>\d{{4}})[ -]{_NAME}[ -](?<day>\d{{1,2}})",  # 2020-Mar-01
    rf"(?<day>\d{{1,2}})[ -]{_NAME}[ -](?<year>\d{{2}})",  # 01-Mar-20
    rf"{_NAME}[ -](?<day>\d{{1,2}})[ -](?<year>\d{{2}})",  # Mar-01-20
)
_TIME = (
    r"(?:(?:T|\s+|\s*,\s*|\s*at\s+)(?<hour>\d{1,2}):(?<minute>\d{2})"
    r"(?::(?<second>\d{2})(?:[.,](?<fraction>\d{1,9}))?)?\s*(?<ampm>[ap]\.?m\.?)?)?"
    r"\s*(?<zone>z|utc|gmt|[+-]\d{2}:?\d{2})?"
)
_WEEKDAY = r"(?:[a-z]{3,9},?\s+)?"  # Sun, 01 Mar 2020 05:07:38 GMT
DEFAULT_RULES = tuple(rf"^\s*{_WEEKDAY}{layout}{_TIME}\s*$" for layout in DATE_LAYOUTS)
_MONTHS = "janfebmaraprmayjunjulaugsepoctnovdec"


def _type(df: DataFrame, name: str) -> DataType:
    return df.schema[find(df.columns, name) or name].dataType


def _text(df: DataFrame, name: str) -> Column:
    """The column as text (numbers too, so 20200301 reads as yyyyMMdd)."""
    return col(df, name).cast("string")


def _group(value: Column, rule: str, groups: dict[str, int], name: str) -> Column:
    """The group's text, or null when the rule has no such group or it matched nothing."""
    if name not in groups:
        return F.lit(None).cast("string")
    found = F.regexp_extract(value, rule, groups[name])
    return F.when(found != "", found)


def _number(text: Column, digits: int = 9) -> Column:
    return F.when(text.rlike(rf"^\d{{1,{digits}}}$"), text.cast("int"))


def _month(text: Column) -> Column:
    """A month number from digits or an English month name (or its first three letters)."""
    at = F.call_function("locate", F.lower(F.substring(text, 1, 3)), F.lit(_MONTHS))
    by_name = F.when((F.length(text) >= 3) & (at % 3 == 1), ((at + 2) / 3).cast("int"))
    return F.coalesce(_number(text, 2), by_name)


def _parts(value: Column, rule: str) -> dict[str, Column]:
    """The rule's groups as columns; the rule is matched ignoring case."""
    java = "(?i)" + rule
    groups = {k.lower(): v for k, v in group_indexes(rule).items()}
    year = _group(value, java, groups, "year")
    year_number = _number(year, 4)
    parts = {
        "year": F.when(F.length(year) == 2, year_number + 2000).otherwise(year_number),
        "month": _month(_group(value, java, groups, "month")),
        "day": _number(_group(value, java, groups, "day"), 2),
    }
    hour = F.coalesce(_number(_group(value, java, groups, "hour"), 2), F.lit(0))
    ampm = F.lower(F.substring(_group(value, java, groups, "ampm"), 1, 1))
    parts["hour"] = (
        F.when(ampm.isNull(), hour)
        .when(hour > 12, None)
        .otherwise(hour % 12 + F.when(ampm == "p", 12).otherwise(0))
    )
    parts["minute"] = F.coalesce(_number(_group(value, java, groups, "minute"), 2), F.lit(0))
    fraction = F.coalesce(_group(value, java, groups, "fraction"), _group(value, java, groups, "ns"))
    second = F.coalesce(_number(_group(value, java, groups, "second"), 2), F.lit(0))
    micros = F.coalesce(F.rpad(F.substring(fraction, 1, 6), 6, "0").cast("int"), F.lit(0))
    parts["second"] = (second * 1_000_000 + micros).cast("decimal(14,0)") / 1_000_000
    zone = F.upper(F.coalesce(_group(value, java, groups, "zone"), _group(value, java, groups, "zero")))
    offset = F.regexp_replace(zone, r"^([+-]\d{2}):?(\d{2})$", "$1:$2")
    parts["zone"] = (
        F.when(zone.isNull() | zone.isin("Z", "UTC", "GMT"), F.lit("UTC"))
        .when(offset.rlike(r"^[+-](0\d|1[0-7]):[0-5]\d$|^[+-]18:00$"), offset)
        .otherwise(None)
    )
    return parts


def _valid_date(parts: dict[str, Column]) -> Column:
    year, month, day = parts["year"], parts["month"], parts["day"]
    last = F.dayofmonth(F.last_day(F.make_date(year, month, F.lit(1))))
    return year.between(1, 9999) & month.between(1, 12) & day.between(1, last)


def _date(value: Column, rule: str) -> Column:
    parts = _parts(value, rule)
    made = F.when(_valid_date(parts), F.make_date(parts["year"], parts["month"], parts["day"]))
    return F.when(value.rlike("(?i)" + rule), made)


def _timestamp(value: Column, rule: str) -> Column:
    p = _parts(value, rule)
    valid = (_valid_date(p) & p["hour"].between(0, 23) & p["minute"].between(0, 59) & (p["second"] < 60)) & p[
        "zone"
    ].isNotNull()
    made = F.make_timestamp(p["year"], p["month"], p["day"], p["hour"], p["minute"], p["second"], p["zone"])
    return F.when(value.rlike("(?i)" + rule), F.when(valid, made))


def as_date(df: DataFrame, name: str, rules: list[str] | tuple[str, ...] = ()) -> Column:
    """The column read as a date: dates and timestamps as they are, text by the rules in order and
    then by the default layouts (the date as written, whatever its time zone)."""
    if isinstance(_type(df, name), (DateType, TimestampType, TimestampNTZType)):
        return F.to_date(col(df, name))
    value = _text(df, name)
    return F.coalesce(*(_date(value, rule) for rule in (*rules, *DEFAULT_RULES)))


def as_timestamp(df: DataFrame, name: str, rules: list[str] | tuple[str, ...] = ()) -> Column:
    """The column read as a timestamp: text without a zone or offset is UTC."""
    if isinstance(_type(df, name), (DateType, TimestampType, TimestampNTZType)):
        return col(df, name).cast("timestamp")
    value = _text(df, name)
    return F.coalesce(*(_timestamp(value, rule) for rule in (*rules, *DEFAULT_RULES)))


def _seconds(df: DataFrame, name: str) -> Column:
    """Epoch seconds as a number; text that is not a number gives null."""
    value = col(df, name)
    if isinstance(_type(df, name), NumericType):
        return value
    text = F.trim(value.cast("string"))
    return F.when(text.rlike(r"^[+-]?\d{1,12}(\.\d{1,9})?$"), text.cast("decimal(21,9)"))


def any_date(df: DataFrame, fn: spec.AnyDate) -> DataFrame:
    return put(df, fn.as_column or fn.column, as_date(df, fn.column, fn.rules))


def any_timestamp(df: DataFrame, fn: spec.AnyTimestamp) -> DataFrame:
    value = as_timestamp(df, fn.column, fn.rules)
    return put(df, fn.as_column or fn.column, F.from_utc_timestamp(value, fn.timezone))


def diff_date(df: DataFrame, fn: spec.DiffDate) -> DataFrame:
    return put(df, fn.as_column, F.datediff(as_date(df, fn.column_a), as_date(df, fn.column_b)))


def epoch_to_timestamp(df: DataFrame, fn: spec.EpochToTimestamp) -> DataFrame:
    return put(df, fn.as_column or fn.column, F.timestamp_seconds(_seconds(df, fn.column)))


def format_date(df: DataFrame, fn: spec.FormatDate) -> DataFrame:
    return put(df, fn.as_column or fn.column, F.date_format(as_timestamp(df, fn.column), fn.format))


def format_unix_date(df: DataFrame, fn: spec.FormatUnixDate) -> DataFrame:
    seconds = F.floor(_seconds(df, fn.column)).cast("long")
    return put(df, fn.as_column or fn.column, F.from_unixtime(seconds, fn.format))


TRANSFORMS: dict[str, Transform] = {
    "any_date": any_date,
    "any_timestamp": any_timestamp,
    "diff_date": diff_date,
    "epoch_to_timestamp": epoch_to_timestamp,
    "format_date": format_date,
    "format_unix_date": format_unix_date,
}
