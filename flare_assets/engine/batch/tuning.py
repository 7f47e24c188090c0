"""A job's sparkConf: runtime confs for that job only; static ones (they need a new JVM) are merged
into the run's JVM sizing where they can be, reported where they cannot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

# Iceberg's session confs: each query reads them, though Spark, not knowing them, calls them static.
ICEBERG_SESSION_CONF = "spark.sql.iceberg."


@contextmanager
def job_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[list[str]]:
    """Sets the runtime confs for the block and restores them after; yields the static keys it skipped."""
    static = [k for k in conf if not (k.startswith(ICEBERG_SESSION_CONF) or spark.conf.isModifiable(k))]
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


# Static confs that size a JVM: when jobs of one run ask for different values, the run's JVM takes
# the largest, which every one of them can run in. Other static confs (jars, Java options, the
# master) cannot be merged: the first job's value stands and later jobs are told.
SIZING_KEYS = {
    "spark.driver.memory": "bytes",
    "spark.driver.memoryOverhead": "bytes",
    "spark.driver.maxResultSize": "bytes",
    "spark.executor.memory": "bytes",
    "spark.executor.memoryOverhead": "bytes",
    "spark.driver.cores": "cpus",
    "spark.executor.cores": "cpus",
    "spark.executor.instances": "cpus",
    "spark.kubernetes.driver.limit.cores": "cpus",
    "spark.kubernetes.executor.limit.cores": "cpus",
}

_UNITS = {"": 1 << 20, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def size_of(key: str, value: str) -> float:
    """A sizing conf as a number to compare: bytes for memory (MiB when no unit, as Spark reads
    spark.*.memory), CPUs for cores (`2200m` are millicores, as Kubernetes writes them)."""
    text = str(value).strip().lower()
    if SIZING_KEYS.get(key) == "cpus":
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    number = text.rstrip("bikmgtp")
    unit = text[len(number) :].rstrip("ib")[:1]
    return float(number) * _UNITS[unit]


def covers(key: str, running: str | None, wanted: str) -> bool:
    """Whether a JVM started with `running` for `key` serves a job asking for `wanted`."""
    if running is None:
        return False
    if key in SIZING_KEYS:
        return size_of(key, running) >= size_of(key, wanted)
    return running == wanted


def largest(confs: list[dict[str, str]]) -> dict[str, str]:
    """The static confs a JVM shared by these jobs starts with: the largest value of each sizing
    key; for any other key, the first job's value."""
    merged: dict[str, str] = {}
    for conf in confs:
        for key, value in conf.items():
            if key not in merged or (key in SIZING_KEYS and not covers(key, merged[key], value)):
                merged[key] = value
    return merged
