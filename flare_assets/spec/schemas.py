"""Input schemas as Flare gives them: Spark DDL, Spark's JSON schema, or an Avro record (`.avsc`),
inline (`schemaString`) or in a file (`schemaPath`). Turned into one form Spark reads, with no JVM."""

from __future__ import annotations

import json
from typing import Any, Literal

from flare_assets.spec.avro import avro_to_spark

SchemaType = Literal["spark", "avro", "ddl"]


def kind_of(text: str, declared: str | None = None, filename: str = "") -> SchemaType:
    """The declared `schemaType`, else what the text is: an Avro record, a Spark struct, or DDL."""
    if declared in ("spark", "avro", "ddl"):
        return declared  # type: ignore[return-value]
    if filename.endswith(".avsc"):
        return "avro"
    if not text.lstrip().startswith("{"):
        return "ddl"
    return "avro" if _json(text).get("type") == "record" else "spark"


def spark_schema(text: str, declared: str | None = None, filename: str = "") -> dict[str, Any] | str:
    """Spark's StructType JSON (a dict), or DDL text; ValueError saying what is wrong."""
    kind = kind_of(text, declared, filename)
    if kind == "ddl":
        return text.strip()
    if kind == "avro":
        return avro_to_spark(text)
    struct = _json(text)
    if struct.get("type") != "struct" or not isinstance(struct.get("fields"), list):
        raise ValueError('a Spark JSON schema is {"type": "struct", "fields": [...]}')
    return struct


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the schema is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("the schema is not a JSON object")
    return value
