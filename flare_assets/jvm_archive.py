"""A class-data-sharing archive of the classes a Spark driver loads, so every run's JVM starts faster.

Each Dagster run is a new process with a new JVM that loads some ten thousand Spark, Scala and
Hadoop classes before its first query. Mapping them from one archive instead cuts the session start
and the first query by about 2.5 s on these machines. The archive belongs to one Java and one set of
jars (its file name hashes both); a separate process builds it once, by running a small Spark
workload with `-XX:ArchiveClassesAtExit`, and moves it into place only after that JVM has exited, so
a run never maps a half-written file. Until it exists, runs start without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flare_assets import jars as jarlib

DRIVER_OPTIONS = "spark.driver.extraJavaOptions"
# The JVM's own notes on classes it cannot archive (signed jars, generated accessors) are noise.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
# Static confs that change what the driver's class loaders see; the archive is valid for one set.
CLASSPATH_KEYS = ("spark.jars", "spark.jars.packages", "spark.driver.extraClassPath")
# A builder's lock; a failed build leaves it (saying so) for this long, so runs do not retry at once.
STALE_LOCK_S = 1800
FAILED = "failed"


def archive_path(folder: Path, conf: dict[str, str]) -> Path:
    """The archive for this Java and these jars."""
    import pyspark

    java = Path(jarlib.require_java()).resolve()
    spark_jars = Path(pyspark.__file__).parent / "jars"
    key = json.dumps(
        [
            str(java),
            java.stat().st_mtime_ns,
            pyspark.__version__,
            sorted(p.name for p in spark_jars.glob("*.jar")),
            [conf.get(k, "") for k in CLASSPATH_KEYS],
        ]
    )
    return folder / f"spark-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def with_archive(conf: dict[str, str], folder: Path | None) -> dict[str, str]:
    """`conf` with the driver mapping the archive when it exists; otherwise unchanged, and a build
    starts in the background (one per archive, across processes)."""
    if folder is None or "SharedArchiveFile" in conf.get(DRIVER_OPTIONS, ""):
        return conf
    path = archive_path(folder, conf)
    if path.exists():
        options = f"{conf.get(DRIVER_OPTIONS, '')} -XX:SharedArchiveFile={path} {QUIET}".strip()
        return {**conf, DRIVER_OPTIONS: options}
    start_build(path, conf)
    return conf


def ensure(conf: dict[str, str], folder: Path, timeout_s: float = 900) -> Path:
    """The archive for `conf`, built now if missing (or waited for, when another process builds it)."""
    path = archive_path(folder, conf)
    lock = path.with_suffix(".lock")
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if lock.exists() and lock.read_text() == FAILED:
            lock.unlink(missing_ok=True)  # asked for explicitly: try again now
        builder = start_build(path, conf)
        if builder is not None and builder.wait(timeout=timeout_s) != 0:
            raise RuntimeError(f"building {path} failed; see {path.with_suffix('.log')}")
        if builder is None:
            time.sleep(1)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not built within {timeout_s:.0f} s")
    return path


def start_build(path: Path, conf: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Starts the builder unless another process holds its lock; returns it (None: already running)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_suffix(".lock")
    for old in [lock, *path.parent.glob("*.tmp")]:  # left by a builder killed long ago
        try:
            if time.time() - old.stat().st_mtime > STALE_LOCK_S:
                old.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return None
    os.close(fd)
    log = open(path.with_suffix(".log"), "wb")  # noqa: SIM115 - the child writes it
    return subprocess.Popen(
        [sys.executable, "-m", "flare_assets.jvm_archive", str(path), json.dumps(conf)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


WORKLOAD = [
    "CREATE TABLE warm.db.orders (id BIGINT, k INT, amount DECIMAL(12,2), ts TIMESTAMP) USING iceberg "
    "PARTITIONED BY (days(ts))",
    "INSERT INTO warm.db.orders SELECT a.id, a.k, CAST(a.amount AS DECIMAL(12,2)), CAST(a.ts AS TIMESTAMP) "
    "FROM json_in a JOIN csv_in b ON a.id = b.id",
    "MERGE INTO warm.db.orders t USING (SELECT id, k + 1 AS k, CAST(amount AS DECIMAL(12,2)) AS amount, "
    "CAST(ts AS TIMESTAMP) AS ts FROM csv_in WHERE id < 50) s "
    "ON t.id = s.id WHEN MATCHED THEN UPDATE SET t.k = s.k WHEN NOT MATCHED THEN INSERT *",
    "SELECT k, COUNT(*) AS n, SUM(amount) AS total, COUNT(DISTINCT id) AS ids FROM warm.db.orders "
    "WHERE amount > 0 GROUP BY k ORDER BY k",
    "DELETE FROM warm.db.orders WHERE k = 3",
    "CALL warm.system.rewrite_data_files(table => 'db.orders')",
    "SELECT * FROM warm.db.orders.snapshots",
]


def _workload(spark: object, folder: Path) -> None:
    """Reads files, joins, aggregates and writes Iceberg, so the classes a flare job needs are loaded."""
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)
    rows = spark.range(2000).selectExpr(
        "id",
        "CAST(id % 7 AS INT) AS k",
        "id * 1.25 AS amount",
        "timestamp'2026-01-01' + make_interval(0,0,0,0,0,0,id) AS ts",
    )
    rows.write.json(str(folder / "json"))
    rows.write.option("header", "true").csv(str(folder / "csv"))
    rows.write.parquet(str(folder / "parquet"))
    spark.read.json(str(folder / "json")).createOrReplaceTempView("json_in")
    spark.read.option("header", "true").option("inferSchema", "true").csv(
        str(folder / "csv")
    ).createOrReplaceTempView("csv_in")
    spark.read.parquet(str(folder / "parquet")).count()
    for sql in WORKLOAD:
        spark.sql(sql).collect()


def build(path: Path, conf: dict[str, str]) -> None:
    """Runs the workload in a JVM that writes the archive when it exits, then moves it into place."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_suffix(".lock")
    dump = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    built = False
    try:
        with tempfile.TemporaryDirectory(prefix="flare-jvm-archive-") as tmp:
            options = f"{conf.get(DRIVER_OPTIONS, '')} -XX:ArchiveClassesAtExit={dump} {QUIET}".strip()
            builder = SparkSession.builder
            for key, value in {
                **conf,
                DRIVER_OPTIONS: options,
                "spark.master": "local[2]",
                "spark.ui.enabled": "false",
                "spark.sql.catalog.warm": "org.apache.iceberg.spark.SparkCatalog",
                "spark.sql.catalog.warm.type": "hadoop",
                "spark.sql.catalog.warm.warehouse": f"{tmp}/warehouse",
            }.items():
                builder = builder.config(key, value)
            spark = builder.getOrCreate()
            try:
                _workload(spark, Path(tmp))
            finally:
                spark.stop()
                _exit_jvm(SparkContext._gateway)
        if not dump.exists():
            raise RuntimeError(f"the JVM wrote no archive at {dump}")
        os.replace(dump, path)
        built = True
    finally:
        dump.unlink(missing_ok=True)
        if built:
            lock.unlink(missing_ok=True)
        else:
            lock.write_text(FAILED)


def _exit_jvm(gateway: Any) -> None:
    """Ends the gateway JVM and waits while it writes the archive (it exits when its stdin closes)."""
    process = getattr(gateway, "proc", None)
    if gateway is not None:
        gateway.shutdown()
    if process is not None:
        process.stdin.close()
        process.wait(timeout=600)


if __name__ == "__main__":
    build(Path(sys.argv[1]), json.loads(sys.argv[2]))
