"""Functions that take text apart: e-mail addresses, URLs, HTML."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from flare_assets.engine.functions.base import Transform, col, put
from flare_assets.spec.functions import text as spec

EMAIL = r"^\s*([^@\s]*)@([^@\s]*)\s*$"
# What java.net.URI takes with a scheme and an authority (so parse_url never raises, ANSI or not).
URL = r"^[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"<>\\^`{|}]*$"
BAD_ESCAPE = r"%(?![0-9A-Fa-f]{2})"
PORT = r"^(?:[^@]*@)?(?:\[[^\]]*\]|[^:]*):(\d{1,5})$"
BLOCK_TAGS = (
    "address|article|aside|blockquote|br|dd|div|dl|dt|fieldset|figcaption|figure|footer|form|h[1-6]"
    "|header|hr|li|main|nav|ol|p|pre|section|table|tbody|td|tfoot|th|thead|tr|ul"
)
ENTITIES = (
    ("&nbsp;", " "),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", '"'),
    ("&apos;", "'"),
    ("&#39;", "'"),
    ("&ndash;", "\u2013"),
    ("&lsquo;", "\u2018"),
    ("&rsquo;", "\u2019"),
    ("&ldquo;", "\u201c"),
    ("&rdquo;", "\u201d"),
    ("&laquo;", "\u00ab"),
    ("&raquo;", "\u00bb"),
    ("&bull;", "\u2022"),
    ("&middot;", "\u00b7"),
    ("&deg;", "\u00b0"),
    ("&times;", "\u00d7"),
    ("&eacute;", "\u00e9"),
    ("&egrave;", "\u00e8"),
    ("&aacute;", "\u00e1"),
    ("&agrave;", "\u00e0"),
    ("&iacute;", "\u00ed"),
    ("&oacute;", "\u00f3"),
    ("&uacute;", "\u00fa"),
    ("&ntilde;", "\u00f1"),
    ("&ccedil;", "\u00e7"),
    ("&auml;", "\u00e4"),
    ("&ouml;", "\u00f6"),
    ("&uuml;", "\u00fc"),
    ("&szlig;", "\u00df"),
    ("&mdash;", "\u2014"),
    ("&hellip;", "\u2026"),
    ("&copy;", "\u00a9"),
    ("&reg;", "\u00ae"),
    ("&trade;", "\u2122"),
    ("&euro;", "\u20ac"),
    ("&amp;", "&"),  # last, so &amp;lt; stays &lt;
)


def _part(text: Column, pattern: str, index: int) -> Column:
    found = F.regexp_extract(text, pattern, index)
    return F.when(found != "", found)


def split_email(df: DataFrame, fn: spec.SplitEmail) -> DataFrame:
    text = col(df, fn.column).cast("string")
    df = put(df, f"{fn.column}_account", _part(text, EMAIL, 1))
    return put(df, f"{fn.column}_domain", _part(text, EMAIL, 2))


def split_url(df: DataFrame, fn: spec.SplitUrl) -> DataFrame:
    text = F.trim(col(df, fn.column).cast("string"))
    url = F.when(text.rlike(URL) & ~text.rlike(BAD_ESCAPE), text)

    def parsed(part: str) -> Column:
        value = F.parse_url(url, F.lit(part))
        return F.when(value != "", value)

    authority, path = parsed("AUTHORITY"), parsed("PATH")
    parts = {
        "protocol": parsed("PROTOCOL"),
        "authority": authority,
        "host": parsed("HOST"),
        "port": _part(authority, PORT, 1).cast("int"),
        "path": path,
        "filename": _part(path, r"([^/]+)$", 1),
        "query": parsed("QUERY"),
    }
    for name, value in parts.items():
        df = put(df, f"{fn.column}_{name}", value)
    return df


def _numeric_entities(text: Column) -> Column:
    """&#NNN; and &#xHHHH; as their characters."""

    def decoded(piece: Column) -> Column:
        number = F.regexp_extract(piece, r"^&#([0-9]{1,7});", 1)
        hexa = F.regexp_extract(piece, r"^&#[xX]([0-9A-Fa-f]{1,6});", 1)
        code = F.when(number != "", number.cast("int")).when(hexa != "", F.conv(hexa, 16, 10).cast("int"))
        char = F.decode(F.unhex(F.lpad(F.hex(code), 8, "0")), "UTF-32BE")
        rest = F.regexp_replace(piece, r"^&#(?:[0-9]{1,7}|[xX][0-9A-Fa-f]{1,6});", "")
        valid = code.between(1, 0xD7FF) | code.between(0xE000, 0x10FFFF)
        return F.when(valid, F.concat(char, rest)).otherwise(piece)

    return F.array_join(F.transform(F.split(text, "(?=&#)"), decoded), "")


def parse_html(df: DataFrame, fn: spec.ParseHtml) -> DataFrame:
    text = col(df, fn.column).cast("string")
    text = F.regexp_replace(text, r"(?is)<(script|style|head|template)\b[^>]*>.*?</\1\s*>", " ")
    text = F.regexp_replace(text, r"(?s)<!--.*?-->", "")
    text = F.regexp_replace(text, rf"(?i)</?(?:{BLOCK_TAGS})\b[^>]*>", " ")
    text = F.regexp_replace(text, r"<[A-Za-z/!?][^>]*>", "")
    text = _numeric_entities(text)
    for entity, char in ENTITIES:
        text = F.regexp_replace(text, entity, char.replace("\\", "\\\\").replace("$", "\\$"))
    text = F.trim(F.regexp_replace(text, r"[\s\u00a0]+", " "))
    return put(df, fn.as_column or fn.column, text)


TRANSFORMS: dict[str, Transform] = {
    "split_email": split_email,
    "split_url": split_url,
    "parse_html": parse_html,
}
