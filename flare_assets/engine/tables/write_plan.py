"""How a write to a partitioned Iceberg table is spread over tasks, so memory stays bounded.

The rule, chosen by measurement (the bucketing case scenario: identity(category), bucket(20, seg_id),
day(ts), about 6,000 partitions; 2 cores, 2000m driver):

- Iceberg 1.10 asks Spark for a hash distribution by the partition values and, because fanout
  writers are its default for unsorted tables, for no local sort: each task keeps one open Parquet
  writer per partition it holds. Adaptive execution coalesces that shuffle by bytes (Iceberg's
  advisory size, 128 MB files times a compression ratio, and Spark's 1 MB minimum partition size),
  so a result that is small in bytes becomes one task holding every partition: 100,000 rows opened
  about 6,000 writers and died with OutOfMemoryError in Parquet's HeapBytesCompressor, at 2 GB as
  at 6 GB. With adaptive execution off the same rows landed in 5,995 files.
- So partitioned writes turn fanout off (`fanout-enabled=false`): Iceberg then asks for a local
  sort by partition, and each task writes its partitions one after the other, one open file at a
  time, whatever the number of partitions or the size of the task. The sort spills to disk when
  it must; the writers never multiply.
- And the write's shuffle is coalesced to no fewer tasks than the session has cores
  (`spark.sql.adaptive.coalescePartitions.minPartitionNum`, with a minimum partition size of one
  byte), so a small-in-bytes write still uses every core. The hash distribution keeps each
  partition in one task, so more tasks do not mean more files: a partition gets one file unless
  adaptive execution splits it for skew (the advisory size below).
- And the write's tasks aim at Spark's advisory partition size
  (`spark.sql.adaptive.advisoryPartitionSizeInBytes`, 64 MB) rather than Iceberg's (about 512 MB
  of shuffle data for 128 MB files), so each task's sort fits in its execution memory instead of
  spilling. At 10,000,000 rows (2000m driver, one after the other): with Iceberg's advisory size
  140 s, with Spark's 87 s, fanout writers with adaptive execution off 116 s. A partition holding
  more than that size is split over several files, which compaction joins later.
- Measured side by side at 1,000,000 rows (6,000 files each, on a shared 2-core machine): fanout off
  and coalesced to the cores, with Iceberg's advisory size, 527 s; fanout writers with adaptive
  execution off (200 tasks of about 30 open writers) 536 s; fanout off without any coalescing (200
  sorted tasks) 548 s. The sort costs no more than the extra writers it saves, and unlike them it
  stays bounded as partitions grow.
- Unpartitioned tables are left to Spark and Iceberg's defaults: a small result stays one file.
- Rows that come straight from a stream's micro-batch (row-by-row operations over the RDD the
  stream read, no join, aggregate or other shuffle), read in no more tasks than the session has
  cores, are written by the tasks that read them (distribution mode `none`; each task still sorts its
  rows by partition, so one file is open at a time). The shuffle that gathers a partition's rows
  into one task was most of a small batch's write: 200,000 JSON events in 20 files, 2 cores,
  streamed into a day-partitioned table took 1.75-2.0 s with it and 0.95-1.1 s without, where a
  plain Structured Streaming query (Iceberg's sink, which never shuffles) took 1.25-1.3 s. A
  partition gets at most one file per reading task, so at most as many files per partition as the
  session has cores; larger batches keep the shuffle.
- Table properties the manifest set (`write.spark.fanout.enabled`,
  `write.spark.advisory-partition-size-bytes`, `write.distribution-mode`) win over the rule.

These confs are runtime SQL confs, set for the write and restored after (engine.tuning.job_conf).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from flare_assets.engine.batch.tuning import job_conf

FANOUT_PROPERTY = "write.spark.fanout.enabled"
ADVISORY_PROPERTY = "write.spark.advisory-partition-size-bytes"
DISTRIBUTION_PROPERTY = "write.distribution-mode"
# Plan nodes that keep each row in the task that read it.
ROW_BY_ROW = {"Project", "Filter", "SubqueryAlias", "View", "CollectMetrics", "Generate"}


def partitioned(spark: SparkSession, table: str) -> tuple[bool, dict[str, str]]:
    """Whether the table's current spec partitions it, and its properties (Iceberg's table object)."""
    from flare_assets.engine.tables.access import java_table

    ice = java_table(spark, table)
    props = ice.properties()
    return not ice.spec().isUnpartitioned(), {str(k): str(props.get(k)) for k in props.keySet()}


def write_conf(spark: SparkSession) -> dict[str, str]:
    """Runtime confs for a partitioned write: at least one task per core, whatever the bytes."""
    return {
        "spark.sql.adaptive.coalescePartitions.minPartitionNum": str(spark.sparkContext.defaultParallelism),
        "spark.sql.adaptive.coalescePartitions.minPartitionSize": "1",
    }


def advisory_bytes(spark: SparkSession) -> int:
    """Spark's advisory partition size for adaptive execution, in bytes."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    text = spark.conf.get("spark.sql.adaptive.advisoryPartitionSizeInBytes", "64m") or "64m"
    return int(jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes(text))


def _rdd_under(plan: Any) -> Any | None:
    """The RDD node under row-by-row operations, if the plan is nothing else."""
    node = plan
    while node.nodeName() in ROW_BY_ROW and node.children().size() == 1:
        node = node.children().apply(0)
    return node if node.nodeName() == "LogicalRDD" else None


def reading_tasks(df: DataFrame) -> int | None:
    """The tasks that read `df`'s rows when it is row-by-row operations over an RDD (a stream's
    micro-batch, which foreachBatch hands over as the RDD its source read); None for any other plan.
    The analyzed plan settles most writes at once; the optimized one shows what a subquery becomes
    (a join)."""
    execution = df._jdf.queryExecution()
    if _rdd_under(execution.analyzed()) is None:
        return None
    node = _rdd_under(execution.optimizedPlan())
    return node.rdd().getNumPartitions() if node is not None else None


@contextmanager
def bounded_writers(spark: SparkSession, table: str, df: DataFrame) -> Iterator[dict[str, str]]:
    """Applies the rule for writing `df` into `table`; yields the DataFrameWriterV2 options to add."""
    is_partitioned, props = partitioned(spark, table)
    if not is_partitioned:
        yield {}
        return
    options = {} if FANOUT_PROPERTY in props else {"fanout-enabled": "false"}
    if ADVISORY_PROPERTY not in props:
        options["advisory-partition-size"] = str(advisory_bytes(spark))
    tasks = reading_tasks(df) if DISTRIBUTION_PROPERTY not in props else None
    if tasks is not None and tasks <= spark.sparkContext.defaultParallelism:
        options["distribution-mode"] = "none"
    with job_conf(spark, write_conf(spark)):
        yield options
