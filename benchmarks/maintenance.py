"""Table maintenance figures, all measured in one run on fresh tables under a temporary FLARE_HOME:

- health_tick_100_tables_s: one health-sensor tick (pyiceberg reads, observations, run requests)
  over 100 tables, timed before this process starts any JVM;
- compaction_file_reduction, compaction_scan_speedup: 200 micro-batch appends, then health-driven
  compaction; data files before / after, and a full-scan aggregate on the snapshot before against
  the snapshot after, interleaved, medians;
- health_vs_blind_rewrite_ratio: two tables with the same write history (micro-batches for 12
  simulated hours); one compacted when the health rules ask, the other blindly every hour with
  rewrite_data_files' defaults; bytes rewritten by the first / by the second.

Micro-batches are appended with pyiceberg (each a real Iceberg commit); compaction and scans run on Spark.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

import pyarrow as pa

SCHEMA = pa.schema([("id", pa.int64()), ("day", pa.string()), ("amount", pa.float64())])
SCAN = "SELECT day, count(*) AS n, sum(amount) AS total, max(id) AS top FROM {table} GROUP BY day"


def _batch(start: int, rows: int) -> pa.Table:
    ids = list(range(start, start + rows))
    return pa.table(
        {"id": ids, "day": [f"d{i % 7}" for i in ids], "amount": [i * 0.5 for i in ids]}, schema=SCHEMA
    )


def _create(catalog: Any, name: str, properties: dict[str, str] | None = None) -> Any:
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, LongType, NestedField, StringType

    schema = Schema(
        NestedField(1, "id", LongType()),
        NestedField(2, "day", StringType()),
        NestedField(3, "amount", DoubleType()),
    )
    catalog.create_namespace_if_not_exists("bench")
    return catalog.create_table(f"bench.{name}", schema, properties=properties or {})


def _table(name: str) -> Any:
    from flare_assets.defs.tables import MaintainedTable
    from flare_assets.spec.address import Address
    from flare_assets.spec.maintenance import TableMaintenance

    return MaintainedTable(Address("lakehouse", "bench", name), TableMaintenance())


def health_tick(catalog: Any) -> tuple[dict[str, float], dict[str, Any]]:
    from flare_assets import spark as sparklib
    from flare_assets.defs.sensors import health_tick as tick
    from flare_assets.engine.maintenance.health import _MANIFEST_CACHE

    tables = []
    for n in range(100):
        table = _create(catalog, f"t{n:03d}")
        for b in range(3):
            table.append(_batch(b * 100, 100))
        tables.append(_table(f"t{n:03d}"))
    times, warm, runs = [], [], 0
    for _ in range(3):
        _MANIFEST_CACHE.clear()  # a cold tick: every manifest read
        start = time.perf_counter()
        observations, requests = tick(tables)
        times.append(time.perf_counter() - start)
        runs = len(requests)
        start = time.perf_counter()
        tick(tables)  # the next tick of a long-lived sensor process, no table changed
        warm.append(time.perf_counter() - start)
    assert sparklib.running_conf() is None, "the tick must not start a JVM"
    assert len(observations) == 100
    return {"health_tick_100_tables_s": round(statistics.median(times), 3)}, {
        "tick_s": times,
        "warm_tick_s": warm,
        "run_requests": runs,
    }


def _compact(spark: Any, table: Any, targeted: bool) -> tuple[dict[str, int], Any]:
    from flare_assets.defs.tables import table_health
    from flare_assets.engine.maintenance.actions import plan, run_action

    health = table_health(table)
    action = plan("compaction", table.settings, health, int(time.time() * 1000), targeted=targeted)
    return run_action(spark, table.address.table, action).counters, health


def compaction(catalog: Any, spark: Any) -> tuple[dict[str, float], dict[str, Any]]:
    from flare_assets.defs.tables import table_health
    from flare_assets.engine.maintenance.health import needed

    table = _create(catalog, "micro")
    for b in range(200):
        table.append(_batch(b * 500, 500))
    target = _table("micro")
    before = table_health(target)
    needs = needed(before)
    counters, _ = _compact(spark, target, targeted=True)
    after = table_health(target)
    old, new = before.snapshot_id, after.snapshot_id
    name = "lakehouse.bench.micro"
    scans: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(6):
        for label, snapshot in (("before", old), ("after", new)):
            start = time.perf_counter()
            spark.sql(SCAN.format(table=f"{name} VERSION AS OF {snapshot}")).collect()
            scans[label].append(time.perf_counter() - start)
    scans = {k: v[1:] for k, v in scans.items()}  # the first round warms the JVM up
    figures = {
        "compaction_file_reduction": round(before.data_files / after.data_files, 2),
        "compaction_scan_speedup": round(
            statistics.median(scans["before"]) / statistics.median(scans["after"]), 2
        ),
    }
    details = {
        "data_files_before": before.data_files,
        "data_files_after": after.data_files,
        "needs": needs,
        "rewrite": counters,
        "scan_before_s": scans["before"],
        "scan_after_s": scans["after"],
    }
    return figures, details


def health_vs_blind(catalog: Any, spark: Any, hours: int = 12, per_hour: int = 10) -> tuple[dict, dict]:
    from flare_assets.defs.tables import table_health
    from flare_assets.engine.maintenance.health import needed

    props = {"write.target-file-size-bytes": str(1024 * 1024)}
    tables = {k: _create(catalog, k, props) for k in ("by_health", "blind")}
    targets = {k: _table(k) for k in tables}
    rewritten = {k: 0 for k in tables}
    compactions = {k: 0 for k in tables}
    ratios: list[float] = []
    small: list[int] = []
    within: list[bool] = []
    for hour in range(hours):
        for b in range(per_hour):
            batch = _batch((hour * per_hour + b) * 2000, 2000)
            for table in tables.values():
                table.append(batch)
        counters, _ = _compact(spark, targets["blind"], targeted=False)
        rewritten["blind"] += counters.get("rewritten_bytes_count", 0)
        compactions["blind"] += 1
        health = table_health(targets["by_health"])
        if "compaction" in needed(health, targets["by_health"].settings.thresholds):
            counters, _ = _compact(spark, targets["by_health"], targeted=True)
            rewritten["by_health"] += counters.get("rewritten_bytes_count", 0)
            compactions["by_health"] += 1
        health = table_health(targets["by_health"])
        ratios.append(round(health.small_file_ratio, 3))
        small.append(health.small_files)
        within.append("compaction" not in needed(health, targets["by_health"].settings.thresholds))
    ratio = rewritten["by_health"] / rewritten["blind"]
    details = {
        "bytes_rewritten": rewritten,
        "compactions": compactions,
        "small_file_ratio_after_each_hour": ratios,
        "small_files_after_each_hour": small,
        "within_thresholds_after_each_hour": within,
        "small_file_ratio_threshold": targets["by_health"].settings.thresholds.max_small_file_ratio,
        "min_small_files": targets["by_health"].settings.thresholds.min_small_files,
        "hours": hours,
        "batches_per_hour": per_hour,
    }
    return {"health_vs_blind_rewrite_ratio": round(ratio, 3)}, details


def measure() -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-maint-") as home:
        os.environ["FLARE_HOME"] = home
        os.environ.setdefault("FLARE_SPARK_MASTER", "local[2]")
        for key in ("FLARE_CATALOG_URI", "FLARE_WAREHOUSE", "FLARE_PIPELINES", "FLARE_DEPOTS"):
            os.environ.pop(key, None)
        from flare_assets import spark as sparklib
        from flare_assets.catalog import load_catalog

        catalog = load_catalog()
        figures, details = health_tick(catalog)
        spark = sparklib.get_session()
        try:
            for part in (compaction, health_vs_blind):
                found, detail = part(catalog, spark)
                figures.update(found)
                details[part.__name__] = detail
        finally:
            sparklib.stop()
    return figures, details
