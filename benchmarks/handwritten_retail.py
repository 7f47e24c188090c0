"""The demo's retail job written by hand in PySpark: the same reads, SQL and Iceberg writes, no
framework; with `--checks`, also the manifest's assertion queries and its 5-row preview of each
output. The baseline of overhead_ratio."""

from __future__ import annotations

import argparse
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from flare_assets import jars
from flare_assets.settings import Settings

ORDERS_ENRICHED = """
SELECT o.order_id, o.customer_id, c.name AS customer_name, c.city, c.segment,
       CAST(o.order_ts AS TIMESTAMP) AS order_ts, o.status,
       o.quantity, CAST(o.unit_price AS DECIMAL(10,2)) AS unit_price,
       CAST(o.quantity * o.unit_price AS DECIMAL(12,2)) AS amount
FROM orders o JOIN customers c ON o.customer_id = c.customer_id
"""
CUSTOMER_REVENUE = """
SELECT customer_id, customer_name, city, segment,
       COUNT(*) AS orders, CAST(SUM(amount) AS DECIMAL(14,2)) AS revenue
FROM orders_enriched WHERE status <> 'cancelled'
GROUP BY customer_id, customer_name, city, segment
"""
# The manifest's assertions on each written table, and what passing means.
CHECKS = {
    "orders_enriched": (
        "SELECT count(order_id) - count(DISTINCT order_id) AS duplicates, "
        "count_if(order_id IS NULL) AS missing, "
        "min(amount) FILTER (WHERE status <> 'cancelled') AS min_amount, "
        "avg(amount) FILTER (WHERE status <> 'cancelled') AS avg_amount "
        "FROM lakehouse.retail.orders_enriched",
        lambda r: r.duplicates == 0 and r.missing == 0 and r.min_amount > 0 and r.avg_amount < 1000,
    ),
    "customer_revenue": (
        "SELECT min(revenue) AS min_revenue, count(*) AS customers FROM lakehouse.retail.customer_revenue",
        lambda r: r.min_revenue > 0 and r.customers > 0,
    ),
}
PREVIEW_LINES = 5


def main(checks: bool = False, jvm_archive: str | None = None) -> None:
    """`jvm_archive`: start the JVM from flare_assets' class archive too."""
    home = os.environ["FLARE_HOME"]
    found = jars.resolve(Settings.from_env())  # the same jars; everything else below is by hand
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    java_options = "-Djava.library.path=" + ":".join(found.library_path)
    if jvm_archive:
        java_options += f" -XX:SharedArchiveFile={jvm_archive} -Xlog:cds=off -Xlog:cds+dynamic=off"
    spark = (
        SparkSession.builder.master(os.environ.get("FLARE_SPARK_MASTER", "local[*]"))
        .config("spark.jars", ",".join(found.paths))
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config("spark.sql.catalog.lakehouse", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.lakehouse.type", "jdbc")
        .config("spark.sql.catalog.lakehouse.uri", f"jdbc:sqlite:{home}/catalog.db")
        .config("spark.sql.catalog.lakehouse.warehouse", f"{home}/warehouse")
        .config("spark.sql.catalog.lakehouse.jdbc.init-catalog-tables", "false")
        .config("spark.sql.catalog.lakehouse.jdbc.schema-version", "V1")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    landing = f"{home}/landing/retail"
    spark.read.option("header", "true").option("inferSchema", "true").csv(
        f"{landing}/customers"
    ).createOrReplaceTempView("customers")
    spark.read.json(f"{landing}/orders").createOrReplaceTempView("orders")
    spark.sql(ORDERS_ENRICHED).createOrReplaceTempView("orders_enriched")
    spark.sql(CUSTOMER_REVENUE).createOrReplaceTempView("customer_revenue")
    for view in ("orders_enriched", "customer_revenue"):
        spark.table(view).writeTo(f"lakehouse.retail.{view}").overwrite(F.lit(True))
        if checks:
            sql, passed = CHECKS[view]
            row = spark.sql(sql).collect()[0]
            if not passed(row):
                raise SystemExit(f"{view}: assertion failed: {row}")
            spark.table(f"lakehouse.retail.{view}").limit(PREVIEW_LINES).collect()
    spark.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", action="store_true")
    parser.add_argument("--jvm-archive")
    args = parser.parse_args()
    main(args.checks, args.jvm_archive)
