"""housekeeping_partition_reduction and housekeeping_listing_speedup: the SDLB example's staged
dataset, 10,000 partitions (1,000 hourly runs x 10 reporting units, one small file each), before
and after archiving into buckets of 500 run ids (the last day's 24 runs stay) and compacting the
buckets; the time to list and plan a full Spark read, medians of interleaved-free repeated reads in
one process; rows counted and checksummed before and after."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

RUNS, UNITS, ROWS_PER_PARTITION = 1000, 10, 4
KEEP = 24  # the last day of hourly runs is not archived
ARCHIVE = (
    f"if(elements.run_id < (runId - {KEEP}), map('run_id', (cast(elements.run_id as integer) div 500) * 500, "
    "'reporting_unit', elements.reporting_unit), elements)"
)
COMPACT = f"elements.run_id < runId - {KEEP}"
CHECKSUM = ["count(*) AS rows", "sum(xxhash64(reporting_unit, upload, metric, value)) AS checksum"]


def _list_and_plan(spark, root: str) -> float:  # noqa: ANN001
    """A fresh read of the folder: partition discovery lists it, then the physical plan is built."""
    start = time.perf_counter()
    frame = spark.read.parquet(root)
    frame._jdf.queryExecution().executedPlan()
    return time.perf_counter() - start


def _median_listing(spark, root: str, rounds: int) -> tuple[float, list[float]]:  # noqa: ANN001
    _list_and_plan(spark, root)  # warm: JIT and the OS's file cache, alike for both sides
    times = [_list_and_plan(spark, root) for _ in range(rounds)]
    return statistics.median(times), times


def measure(rounds: int = 5) -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        home = Path(tmp)
        os.environ.update({"FLARE_HOME": str(home), "FLARE_SPARK_MASTER": "local[2]"})
        for key in ("FLARE_DEPOTS", "FLARE_PIPELINES", "FLARE_CATALOG_URI", "FLARE_WAREHOUSE"):
            os.environ.pop(key, None)
        from flare_assets.depots import load_depots
        from flare_assets.engine import housekeeping
        from flare_assets.settings import Settings
        from flare_assets.spark import get_session, stop
        from flare_assets.spec.model import Output

        settings = Settings.from_env()
        spark = get_session(settings)
        try:
            root = settings.resolve("staging") / "reporting_units" / "staged"
            rows = spark.range(RUNS * UNITS * ROWS_PER_PARTITION).selectExpr(
                f"CAST(id DIV {UNITS * ROWS_PER_PARTITION} + 1 AS INT) AS run_id",
                f"format_string('rp%02d', CAST(id DIV {ROWS_PER_PARTITION} % {UNITS} + 1 AS INT))"
                " AS reporting_unit",
                "CAST(id AS INT) AS upload",
                "element_at(array('revenue', 'orders', 'returns', 'visitors'), CAST(id % 4 + 1 AS INT))"
                " AS metric",
                "CAST(id * 7 % 10007 AS DOUBLE) / 3 AS value",
            )
            t0 = time.perf_counter()
            rows.repartition("run_id", "reporting_unit").write.partitionBy(
                "run_id", "reporting_unit"
            ).parquet(str(root))
            staged_s = time.perf_counter() - t0
            before = spark.read.parquet(str(root)).selectExpr(*CHECKSUM).first().asDict()
            list_before, times_before = _median_listing(spark, str(root), rounds)

            output = Output.model_validate(
                {
                    "name": "staged",
                    "dataset": "dataos://staging:reporting_units/staged",
                    "format": "parquet",
                    "options": {"saveMode": "overwrite", "partitionBy": ["run_id", "reporting_unit"]},
                    "housekeepingMode": {
                        "type": "PartitionArchiveCompactionMode",
                        "archivePartitionExpression": ARCHIVE,
                        "compactPartitionExpression": COMPACT,
                    },
                }
            )
            ctx = housekeeping.context("reporting-units", output, RUNS + 1)
            result = housekeeping.run(spark, output, load_depots(settings.depots), settings, ctx)

            after = spark.read.parquet(str(root)).selectExpr(*CHECKSUM).first().asDict()
            list_after, times_after = _median_listing(spark, str(root), rounds)
        finally:
            stop()
    if before != after:
        raise AssertionError(f"rows changed by archiving: before {before}, after {after}")
    figures = {
        "housekeeping_partition_reduction": round(result.partitions_before / result.partitions_after, 2),
        "housekeeping_listing_speedup": round(list_before / list_after, 2),
    }
    details = {
        "partitions_before": result.partitions_before,
        "partitions_after": result.partitions_after,
        "files_before": result.files_before,
        "files_after": result.files_after,
        "file_reduction": round(result.files_before / result.files_after, 2),
        "list_and_plan_before_s": times_before,
        "list_and_plan_after_s": times_after,
        "rows_before": before["rows"],
        "rows_after": after["rows"],
        "checksum_before": before["checksum"],
        "checksum_after": after["checksum"],
        "rows_and_checksums_equal": before == after,
        "archived_partitions": len(result.archived),
        "compacted_partitions": len(result.compacted),
        "housekeeping_s": round(result.seconds, 2),
        "staging_write_s": round(staged_s, 2),
        "archive_expression": ARCHIVE,
        "compact_expression": COMPACT,
        "run_id": RUNS + 1,
    }
    print(
        f"partitions {result.partitions_before} -> {result.partitions_after}, files {result.files_before} -> "
        f"{result.files_after}; list and plan {list_before:.3f} s -> {list_after:.3f} s; rows "
        f"{before['rows']} -> {after['rows']}, checksum {before['checksum']} -> {after['checksum']}",
        flush=True,
    )
    return figures, details
