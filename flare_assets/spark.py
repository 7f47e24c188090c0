"""Builds the SparkSession from settings: jars, Iceberg extensions, one catalog per iceberg depot.

One JVM per process: the first call starts it; every later call gets a fresh session on it (own SQL
conf, temp views and catalogs), so runs in one process never see each other's state.
"""

from __future__ import annotations

import os
import sys
import threading

from pyspark.sql import SparkSession

from flare_assets import jars as jarlib
from flare_assets import jvm_archive
from flare_assets.catalog import ensure_catalog
from flare_assets.depots import DepotMap, load_depots
from flare_assets.settings import Settings

_lock = threading.Lock()
_root: SparkSession | None = None

DRIVER_OPTIONS = jvm_archive.DRIVER_OPTIONS
JAVA_OPTIONS = (DRIVER_OPTIONS, "spark.executor.extraJavaOptions")
QUICK_JIT = "-XX:TieredStopAtLevel=1"

# Retries on commit conflicts: writers in other processes are expected (every Dagster run is one).
TABLE_DEFAULTS = {
    "commit.retry.num-retries": "20",
    "commit.retry.min-wait-ms": "50",
    "commit.retry.max-wait-ms": "2000",
    "format-version": "2",
}


def static_conf(settings: Settings) -> dict[str, str]:
    """Confs fixed when the JVM starts."""
    found = jarlib.resolve(settings)
    conf = {
        "spark.master": settings.spark_master,
        "spark.app.name": "flare_assets",
        "spark.ui.enabled": str(settings.spark_ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.session.timeZone": "UTC",
    }
    if settings.spark_master.startswith("local"):
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.driver.host"] = "127.0.0.1"
    if found.paths:
        conf["spark.jars"] = ",".join(found.paths)
    if found.packages:
        conf["spark.jars.packages"] = ",".join(found.packages)
    if found.library_path:
        opt = "-Djava.library.path=" + ":".join(found.library_path)
        conf["spark.driver.extraJavaOptions"] = opt
        conf["spark.executor.extraJavaOptions"] = opt
    for key, value in settings.spark_conf.items():  # Java options add to ours (the library path)
        conf[key] = f"{conf[key]} {value}" if key in JAVA_OPTIONS and key in conf else value
    return conf


def quick_jit(conf: dict[str, str]) -> dict[str, str]:
    """`conf` with the driver on the client compiler alone, for a run whose JVM lives for seconds
    (a small micro-batch): C2's compilations compete with the batch for the machine's cores and
    never pay back, and without them the JVM starts and runs the batch about a second sooner here."""
    options = f"{conf.get(DRIVER_OPTIONS, '')} {QUICK_JIT}".strip()
    return {**conf, DRIVER_OPTIONS: options}


# Storage-partitioned joins: tables bucketed alike join without a shuffle.
SESSION_DEFAULTS = {
    "spark.sql.sources.v2.bucketing.enabled": "true",
    "spark.sql.sources.v2.bucketing.pushPartValues.enabled": "true",
    "spark.sql.requireAllClusterKeysForCoPartition": "false",
    "spark.sql.iceberg.planning.preserve-data-grouping": "true",
}


def catalog_conf(settings: Settings, depots: DepotMap) -> dict[str, str]:
    """Runtime confs naming one Spark catalog per iceberg depot, all on the configured backend."""
    conf: dict[str, str] = {}
    for name in depots.iceberg_depots():
        prefix = f"spark.sql.catalog.{name}"
        conf[prefix] = "org.apache.iceberg.spark.SparkCatalog"
        conf[f"{prefix}.uri"] = settings.catalog_uri
        conf[f"{prefix}.warehouse"] = settings.warehouse
        # Table caching (Iceberg's default) keeps one statement on one snapshot while other processes
        # commit; every run has its own session, hence its own cache.
        conf[f"{prefix}.cache-enabled"] = "true"
        if settings.catalog_kind == "rest":
            conf[f"{prefix}.type"] = "rest"
        else:
            conf[f"{prefix}.type"] = "jdbc"
            # pyiceberg creates the schema first (catalog.ensure_catalog); see catalog.py on why
            conf[f"{prefix}.jdbc.init-catalog-tables"] = "false"
            conf[f"{prefix}.jdbc.schema-version"] = "V1"
            if settings.catalog_user:
                conf[f"{prefix}.jdbc.user"] = settings.catalog_user
            if settings.catalog_password:
                conf[f"{prefix}.jdbc.password"] = settings.catalog_password
        for key, value in settings.catalog_properties.items():
            conf[f"{prefix}.{key}"] = value
        for key, value in TABLE_DEFAULTS.items():
            conf[f"{prefix}.table-default.{key}"] = value
    return conf


def get_session(settings: Settings | None = None, depots: DepotMap | None = None) -> SparkSession:
    settings = settings or Settings.from_env()
    depots = depots or load_depots(settings.depots)
    settings.writable_home()
    for name in depots.iceberg_depots():
        ensure_catalog(settings, name)
    global _root
    with _lock:
        if _root is None or _root.sparkContext._jsc is None:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = SparkSession.builder
            for key, value in jvm_archive.with_archive(static_conf(settings), settings.jvm_archive).items():
                builder = builder.config(key, value)
            _root = builder.getOrCreate()
            _root.sparkContext.setLogLevel("WARN")
        session = _root.newSession()
    for key, value in {**SESSION_DEFAULTS, **catalog_conf(settings, depots)}.items():
        session.conf.set(key, value)
    return session


def running_conf() -> dict[str, str] | None:
    """The running JVM's Spark conf, or None when no JVM runs in this process."""
    with _lock:
        if _root is None or _root.sparkContext._jsc is None:
            return None
        return dict(_root.sparkContext.getConf().getAll())


def stop() -> None:
    global _root
    with _lock:
        if _root is not None:
            _root.stop()
            _root = None
