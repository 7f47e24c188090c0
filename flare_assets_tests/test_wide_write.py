"""A write into thousands of partitions (the shape of the DataOS bucketing case scenario) stays
within a small driver: rows and partitions read back with pyiceberg."""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets_tests.conftest import build_definitions, materialize_all
from flare_assets_tests.manifests import job, output, workflow, write

ROWS = 20_000

# identity(category) x bucket(20, seg_id) x day(ts): 3 x 20 x 100 = 6,000 possible partitions
SQL = """SELECT id, seg_id, ts,
       CASE WHEN pick > 0.67 THEN 'A' WHEN pick > 0.33 THEN 'B' ELSE 'C' END AS category
FROM (
  SELECT explode(ids) AS id,
         CAST(rand() * 100 AS INT) AS seg_id,
         add_months(TIMESTAMP '2025-01-15 08:00:00', CAST(rand() * 100 AS INT)) AS ts,
         rand() AS pick
  FROM (SELECT sequence(1, {rows}) AS ids))
"""
PARTITION_SPEC = [
    {"type": "identity", "column": "category"},
    {"type": "bucket", "column": "seg_id", "numBuckets": 20},
    {"type": "day", "column": "ts", "name": "day_partitioned"},
]
ICEBERG = {"properties": {"write.format.default": "parquet"}, "partitionSpec": PARTITION_SPEC}
SEGMENTS = output(
    "segments",
    "dataos://lakehouse:sample/segments",
    "overwrite",
    format="Iceberg",
    options={"iceberg": ICEBERG},
)
MANIFEST = workflow(
    "wide-write",
    job(steps=[{"name": "segments", "sql": SQL.format(rows=ROWS)}], outputs=[SEGMENTS]),
    dag="random-segments",
    driver={"cores": 2, "memory": "2000m"},
    executor={"cores": 2, "instances": 1, "memory": "2000m"},
)
MANIFEST["workflow"]["dag"][0]["spec"]["stack"] = "flare:7.0"


@pytest.mark.slow  # about 6,000 files: a minute on an idle 2-core machine, several when it is shared
def test_thousands_of_partitions_written_one_file_each(settings: Settings, tmp_path: Path) -> None:
    write(tmp_path / "pipelines", MANIFEST, "wide")
    result = materialize_all(build_definitions(settings, [tmp_path / "pipelines"]))
    assert result.success
    table = load_catalog(settings=settings).load_table("sample.segments")
    assert table.scan().to_arrow().num_rows == ROWS
    partitions = table.inspect.partitions().to_pylist()
    assert len(partitions) > 5_000  # 20,000 rows over 6,000 possible partitions: about 5,960
    assert sum(p["record_count"] for p in partitions) == ROWS
    # each partition was written by one task, so it holds one file
    assert len(table.inspect.files()) == len(partitions)
    assert [f.transform.__class__.__name__ for f in table.spec().fields] == [
        "IdentityTransform",
        "BucketTransform",
        "DayTransform",
    ]
