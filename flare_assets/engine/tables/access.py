"""How the engine names a table in SQL, and reaches Iceberg's own table object behind it."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def literal(value: object) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def java_table(spark: SparkSession, table: str) -> Any:
    """The org.apache.iceberg.Table behind a Spark identifier (a py4j proxy)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    # name resolution reads the active session's catalogs: make it this one
    jvm.org.apache.spark.sql.SparkSession.setActiveSession(spark._jsparkSession)
    return jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table)


def procedure_call(table: str, procedure: str, args: dict[str, str | None]) -> str:
    """`CALL catalog.system.procedure(table => ..., ...)` for an Iceberg procedure on `table`
    (catalog.namespace.name); `args` are SQL values already, and None leaves an argument out."""
    catalog, namespace, name = table.split(".", 2)
    given = [f"table => {literal(namespace + '.' + name)}"]
    given += [f"{k} => {v}" for k, v in args.items() if v is not None]
    return f"CALL {catalog}.system.{procedure}({', '.join(given)})"
