"""The baseline of wide_write_vs_plain_ratio: plain PySpark, adaptive execution off, writing the
bucketing-shaped rows into an Iceberg table of the same partition spec.
`python -m benchmarks.plain_wide_write ROWS DRIVER_MEMORY` (FLARE_HOME names the catalog)."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from benchmarks.wide_write import SQL, TABLE
from flare_assets import jars
from flare_assets.settings import Settings


def main(rows: int, driver_memory: str) -> None:
    home = os.environ["FLARE_HOME"]
    found = jars.resolve(Settings.from_env())  # the same jars; everything else below is by hand
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(os.environ.get("FLARE_SPARK_MASTER", "local[*]"))
        .config("spark.driver.memory", driver_memory)
        .config("spark.jars", ",".join(found.paths))
        .config("spark.driver.extraJavaOptions", "-Djava.library.path=" + ":".join(found.library_path))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config("spark.sql.catalog.lakehouse", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.lakehouse.type", "jdbc")
        .config("spark.sql.catalog.lakehouse.uri", f"jdbc:sqlite:{home}/catalog.db")
        .config("spark.sql.catalog.lakehouse.warehouse", f"{home}/warehouse")
        .config("spark.sql.catalog.lakehouse.jdbc.init-catalog-tables", "false")
        .config("spark.sql.catalog.lakehouse.jdbc.schema-version", "V1")
        .getOrCreate()
    )
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.sample")
    spark.sql(
        f"CREATE OR REPLACE TABLE lakehouse.{TABLE}_plain "
        "(uuid INT, seg_id INT, ts TIMESTAMP, category STRING) USING iceberg "
        "PARTITIONED BY (category, bucket(20, seg_id), days(ts)) "
        "TBLPROPERTIES ('write.format.default'='parquet', 'write.metadata.compression-codec'='gzip', "
        "'format-version'='2')"
    )
    spark.sql(SQL.format(rows=rows)).writeTo(f"lakehouse.{TABLE}_plain").append()
    spark.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
