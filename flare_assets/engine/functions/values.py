"""Functions that change the values of columns, or add a column computed from others."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType, StringType

from flare_assets.engine.functions.base import Transform, col, put
from flare_assets.spec.functions import values as spec
from flare_assets.spec.functions.base import find

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _text(df: DataFrame, name: str) -> Column:
    return col(df, name).cast("string")


def _chunks(bits: Column, size: int) -> Column:
    """`bits` (a string of 0s and 1s) cut into pieces of `size` characters (a shorter tail is left out)."""
    return F.regexp_extract_all(bits, F.lit(f"(.{{{size}}})"), 1)


def _pad(text: Column, size: int, pad: str) -> Column:
    """`text` with `pad` added up to a multiple of `size` characters."""
    length = (F.ceil(F.length(text) / size) * size).cast("int")
    return F.concat(text, F.lit(pad * size)).substr(F.lit(1), length)


def _base32(text: Column) -> Column:
    """RFC 4648 base32 of the text's UTF-8 bytes, padded with `=` to a multiple of 8 characters."""
    nibbles = F.transform(F.split(F.hex(text), ""), lambda c: F.lpad(F.conv(c, 16, 2), 4, "0"))
    bits = F.array_join(nibbles, "")
    bits = _pad(bits, 5, "0")
    alphabet = F.lit(BASE32)
    letters = F.transform(
        _chunks(bits, 5), lambda b: alphabet.substr(F.conv(b, 2, 10).cast("int") + 1, F.lit(1))
    )
    chars = F.array_join(letters, "")
    return _pad(chars, 8, "=")


def _unbase32(text: Column) -> Column:
    """The text that RFC 4648 base32 `text` encodes (either case); null when a character is outside the
    alphabet."""
    letters = F.upper(F.regexp_replace(text, "=+$", ""))
    indexes = F.transform(F.split(letters, ""), lambda c: F.position(c, F.lit(BASE32)) - 1)
    bits = F.array_join(F.transform(indexes, lambda i: F.lpad(F.conv(i.cast("string"), 10, 2), 5, "0")), "")
    octets = F.transform(_chunks(bits, 8), lambda b: F.lpad(F.conv(b, 2, 16), 2, "0"))
    decoded = F.unhex(F.array_join(octets, "")).cast("string")
    return (
        F.when(letters == "", F.lit(""))
        .when(F.array_contains(indexes, -1), F.lit(None).cast("string"))
        .otherwise(decoded)
    )


def _base64(data: Column) -> Column:
    """RFC 4648 base64 on one line (Spark's own breaks lines after 76 characters)."""
    return F.regexp_replace(F.base64(data), r"\r\n", "")


def change_case(df: DataFrame, fn: spec.ChangeCase) -> DataFrame:
    case = {"lower": F.lower, "upper": F.upper, "title": F.initcap}[fn.case]
    return put(df, fn.column, case(_text(df, fn.column)))


def cut_character(df: DataFrame, fn: spec.CutCharacter) -> DataFrame:
    cut = F.substring(_text(df, fn.column), fn.start_index, fn.end_index - fn.start_index + 1)
    return put(df, fn.as_column or fn.column, cut)


def decode(df: DataFrame, fn: spec.Decode) -> DataFrame:
    text = _text(df, fn.column)
    if fn.algo == "base32":
        decoded = _unbase32(text)
    else:
        decoded = F.try_to_binary(text, F.lit(fn.algo)).cast("string")
    return put(df, fn.as_column or fn.column, decoded)


def encode(df: DataFrame, fn: spec.Encode) -> DataFrame:
    text = _text(df, fn.column)
    encoder = {"base32": _base32, "base64": _base64, "hex": F.hex}[fn.algo]
    return put(df, fn.as_column or fn.column, encoder(text.cast("binary")))


def fill_null_or_empty(df: DataFrame, fn: spec.FillNullOrEmpty) -> DataFrame:
    for column, value in fn.columns.items():
        name = find(df.columns, column) or column
        kind = df.schema[name].dataType
        current = col(df, name)
        if isinstance(kind, StringType):
            filled = F.when(current.isNull() | (current == ""), F.lit(value)).otherwise(current)
        else:
            filled = F.coalesce(current, F.lit(value).cast(kind))
        df = put(df, name, filled)
    return df


def find_and_replace(df: DataFrame, fn: spec.FindAndReplace) -> DataFrame:
    pattern, replacement = fn.java()
    return put(df, fn.column, F.regexp_replace(_text(df, fn.column), pattern, replacement))


def generate_uuid(df: DataFrame, fn: spec.GenerateUuid) -> DataFrame:
    return put(df, fn.as_column, F.expr("uuid()"))


def hash_(df: DataFrame, fn: spec.Hash) -> DataFrame:
    text = _text(df, fn.column)
    if fn.algo == "MD5":
        digest = F.md5(text)
    elif fn.algo == "SHA-1":
        digest = F.sha1(text)
    else:
        digest = F.sha2(text, int(fn.algo.removeprefix("SHA-")))
    return put(df, fn.column, digest)


def increment_variable(df: DataFrame, fn: spec.IncrementVariable) -> DataFrame:
    name = find(df.columns, fn.column) or fn.column
    kind = df.schema[name].dataType
    if not isinstance(kind, NumericType):
        raise ValueError(f"increment_variable: column {name!r} is {kind.simpleString()}, not a number")
    return put(df, name, (col(df, name) + 1).cast(kind))


def mask_number(df: DataFrame, fn: spec.MaskNumber) -> DataFrame:
    text = _text(df, fn.column)
    pieces = [F.substring(text, *p) if isinstance(p, tuple) else F.lit(p) for p in fn.pieces()]
    return put(df, fn.column, F.when(text.isNotNull(), F.concat(*pieces)))


def merge(df: DataFrame, fn: spec.Merge) -> DataFrame:
    return put(df, fn.as_column, F.concat_ws(fn.separator, *[_text(df, c) for c in fn.columns]))


def set_type(df: DataFrame, fn: spec.SetType) -> DataFrame:
    return df.withColumns({find(df.columns, c) or c: col(df, c).cast(t) for c, t in fn.columns.items()})


def set_variable(df: DataFrame, fn: spec.SetVariable) -> DataFrame:
    prefix = "__flare_aggregate_"
    aggregates, expression = fn.aggregates(prefix)
    if not aggregates:
        return put(df, fn.column, F.expr(expression))
    totals = df.agg(*[F.expr(a).alias(f"{prefix}{i}") for i, a in enumerate(aggregates)])
    joined = df.crossJoin(F.broadcast(totals))
    out = put(joined, fn.column, F.expr(expression))
    return out.drop(*totals.columns)


def trim(df: DataFrame, fn: spec.Trim) -> DataFrame:
    ends = {"trim": r"^\s+|\s+$", "ltrim": r"^\s+", "rtrim": r"\s+$"}[fn.method]
    return put(df, fn.column, F.regexp_replace(_text(df, fn.column), ends, ""))


TRANSFORMS: dict[str, Transform] = {
    "change_case": change_case,
    "cut_character": cut_character,
    "decode": decode,
    "encode": encode,
    "fill_null_or_empty": fill_null_or_empty,
    "find_and_replace": find_and_replace,
    "generate_uuid": generate_uuid,
    "hash": hash_,
    "increment_variable": increment_variable,
    "mask_number": mask_number,
    "merge": merge,
    "set_type": set_type,
    "set_variable": set_variable,
    "trim": trim,
}
