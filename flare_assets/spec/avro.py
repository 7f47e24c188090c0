"""Avro schemas as Spark schemas: an Avro record (JSON text or parsed) becomes the JSON form of a
Spark StructType (`StructType.fromJson` reads it), with no JVM.

Mapping: null-unions make a field nullable; int, long, float, double, boolean, string and bytes map to
their Spark types; enum -> string; fixed -> binary; array -> array; map -> map with string keys;
logical types date -> date, timestamp-millis/-micros -> timestamp, local-timestamp-millis/-micros ->
timestamp_ntz, decimal -> decimal(precision, scale), others -> their underlying type; unions of
int and long -> long, of float and double -> double, other unions -> a struct of member0, member1 ...;
a field's `doc` becomes its column comment. Named types may be referenced by name after their
definition; recursive types are refused (Spark schemas are finite).
"""

from __future__ import annotations

import json
from typing import Any

PRIMITIVES = {
    "boolean": "boolean",
    "int": "integer",
    "long": "long",
    "float": "float",
    "double": "double",
    "bytes": "binary",
    "string": "string",
}
LOGICAL = {
    "date": "date",
    "timestamp-millis": "timestamp",
    "timestamp-micros": "timestamp",
    "local-timestamp-millis": "timestamp_ntz",
    "local-timestamp-micros": "timestamp_ntz",
}


class AvroSchemaError(ValueError):
    """An Avro schema that has no Spark equivalent or is not valid Avro; the message names where."""


def avro_to_spark(schema: str | dict[str, Any]) -> dict[str, Any]:
    """The Spark StructType JSON (as a dict) for an Avro record schema given as JSON text or dict."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise AvroSchemaError(f"the Avro schema is not JSON: {exc}") from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise AvroSchemaError(
            "an Avro schema for rows must be a record ({'type': 'record', 'fields': [...]})"
        )
    spark_type, _ = _Converter().convert(schema, "", "$")
    return spark_type


class _Converter:
    def __init__(self) -> None:
        self.named: dict[str, Any] = {}  # full name -> Avro definition
        self.open: set[str] = set()  # records being converted (to refuse recursion)

    def convert(self, schema: Any, namespace: str, path: str) -> tuple[Any, bool]:
        """(Spark type, nullable) of an Avro schema at `path` (for messages)."""
        if isinstance(schema, list):
            return self.union(schema, namespace, path)
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return PRIMITIVES[schema], False
            if schema == "null":
                return "void", True
            return self.reference(schema, namespace, path)
        if not isinstance(schema, dict) or "type" not in schema:
            raise AvroSchemaError(f"{path}: {schema!r} is not an Avro schema")
        kind, logical = schema["type"], schema.get("logicalType")
        if logical == "decimal" and kind in ("bytes", "fixed"):
            precision, scale = schema.get("precision"), schema.get("scale", 0)
            if not isinstance(precision, int) or not 0 < precision <= 38 or not 0 <= scale <= precision:
                raise AvroSchemaError(
                    f"{path}: decimal needs 1 <= precision <= 38 and 0 <= scale <= precision"
                )
            if kind == "fixed":
                self.define(schema, namespace, path)
            return f"decimal({precision},{scale})", False
        if logical in LOGICAL and kind in ("int", "long"):
            return LOGICAL[logical], False
        if kind == "record":
            return self.record(schema, namespace, path), False
        if kind == "enum":
            self.define(schema, namespace, path)
            return "string", False
        if kind == "fixed":
            self.define(schema, namespace, path)
            return "binary", False
        if kind == "array":
            element, nullable = self.convert(schema.get("items"), namespace, f"{path}.items")
            return {"type": "array", "elementType": element, "containsNull": nullable}, False
        if kind == "map":
            value, nullable = self.convert(schema.get("values"), namespace, f"{path}.values")
            return {
                "type": "map",
                "keyType": "string",
                "valueType": value,
                "valueContainsNull": nullable,
            }, False
        return self.convert(kind, namespace, path)  # {"type": "string"} and the like

    def define(self, schema: dict[str, Any], namespace: str, path: str) -> tuple[str, str]:
        name = schema.get("name")
        if not isinstance(name, str) or not name:
            raise AvroSchemaError(f"{path}: a {schema['type']} needs a name")
        space = schema.get("namespace", namespace) or ""
        full = name if "." in name or not space else f"{space}.{name}"
        if full in self.named:
            raise AvroSchemaError(f"{path}: the type {full!r} is defined twice")
        self.named[full] = schema
        return full, full.rpartition(".")[0]

    def reference(self, name: str, namespace: str, path: str) -> tuple[Any, bool]:
        full = name if "." in name or not namespace else f"{namespace}.{name}"
        for candidate in (full, name):
            if candidate in self.open:
                raise AvroSchemaError(
                    f"{path}: the type {candidate!r} contains itself; Spark has no recursive types"
                )
            if candidate in self.named:
                definition = dict(self.named[candidate])
                kind = definition["type"]
                if kind == "record":
                    return self.fields(definition, candidate, candidate.rpartition(".")[0], path), False
                if kind == "fixed" and definition.get("logicalType") == "decimal":
                    return f"decimal({definition['precision']},{definition.get('scale', 0)})", False
                return ("string" if kind == "enum" else "binary"), False
        raise AvroSchemaError(f"{path}: unknown Avro type {name!r}")

    def record(self, schema: dict[str, Any], namespace: str, path: str) -> dict[str, Any]:
        full, space = self.define(schema, namespace, path)
        return self.fields(schema, full, space, path)

    def fields(self, schema: dict[str, Any], full: str, space: str, path: str) -> dict[str, Any]:
        fields = schema.get("fields")
        if not isinstance(fields, list):
            raise AvroSchemaError(f"{path}: a record needs a list of fields")
        self.open.add(full)
        out = []
        for i, field in enumerate(fields):
            if not isinstance(field, dict) or not isinstance(field.get("name"), str) or "type" not in field:
                raise AvroSchemaError(f"{path}.fields[{i}]: a field needs a name and a type")
            spark_type, nullable = self.convert(field["type"], space, f"{path}.{field['name']}")
            metadata = {"comment": field["doc"]} if isinstance(field.get("doc"), str) else {}
            out.append(
                {"name": field["name"], "type": spark_type, "nullable": nullable, "metadata": metadata}
            )
        self.open.discard(full)
        return {"type": "struct", "fields": out}

    def union(self, members: list[Any], namespace: str, path: str) -> tuple[Any, bool]:
        nullable = "null" in members or {"type": "null"} in members
        others = [m for m in members if m != "null" and m != {"type": "null"}]
        if not others:
            return "void", True
        if len(others) == 1:
            spark_type, inner = self.convert(others[0], namespace, path)
            return spark_type, nullable or inner
        types = [self.convert(m, namespace, f"{path}[{i}]")[0] for i, m in enumerate(others)]
        if set(types) <= {"integer", "long"}:
            return "long", nullable
        if set(types) <= {"float", "double"}:
            return "double", nullable
        fields = [
            {"name": f"member{i}", "type": t, "nullable": True, "metadata": {}} for i, t in enumerate(types)
        ]
        return {"type": "struct", "fields": fields}, nullable
