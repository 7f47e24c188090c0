"""The demo's retail job written by hand in PySpark: the same reads, SQL and Iceberg writes, no
framework. The baseline of overhead_ratio."""

from __future__ import annotations

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


def main() -> None:
    home = os.environ["FLARE_HOME"]
    found = jars.resolve(Settings.from_env())  # the same jars; everything else below is by hand
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(os.environ.get("FLARE_SPARK_MASTER", "local[*]"))
        .config("spark.jars", ",".join(found.paths))
        .config("spark.driver.extraJavaOptions", "-Djava.library.path=" + ":".join(found.library_path))
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
    spark.stop()


if __name__ == "__main__":
    main()
