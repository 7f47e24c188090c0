"""A job's sparkConf: runtime confs for that job only, static ones reported (they need a new JVM)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession


@contextmanager
def job_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[list[str]]:
    """Sets the runtime confs for the block and restores them after; yields the static keys it skipped."""
    static = [k for k in conf if not spark.conf.isModifiable(k)]
    previous: dict[str, str | None] = {}
    for key, value in conf.items():
        if key in static:
            continue
        previous[key] = spark.conf.get(key, None)
        spark.conf.set(key, value)
    try:
        yield static
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
