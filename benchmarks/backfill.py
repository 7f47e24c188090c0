"""backfill_single_vs_multi: one single-run backfill of 30 daily partitions / 30 separate runs of
one partition each (goal <= 0.25).

Both go through Dagster's `materialize` in one process sharing one Spark JVM, so the separate runs
pay no JVM start (in a deployment each run is a process that starts its own): the figure is a
conservative bound on what a single-run backfill saves."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from flare_assets_tests.manifests import job, workflow, write

DAYS = 30
ROWS_PER_DAY = 20_000


def _manifest(name: str) -> dict:
    sql = (
        "SELECT day, kind, count(*) AS n, sum(amount) AS total FROM sales "
        "WHERE day >= date'$|day_start|' AND day < date'$|day_end|' GROUP BY day, kind"
    )
    block = job(
        inputs=[{"name": "sales", "dataset": "dataos://lakehouse:bench/sales"}],
        steps=[{"name": "daily", "sql": sql}],
        outputs=[{"name": "daily", "dataset": f"dataos://lakehouse:bench/{name.replace('-', '_')}"}],
        showPreviewLines=0,
        partitions={"dimensions": [{"name": "day", "type": "daily", "column": "day", "start": "2024-01-01"}]},
    )
    return workflow(name, block, dag="daily")


def measure() -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-backfill-") as tmp:
        os.environ["FLARE_HOME"] = tmp
        from dagster import DagsterInstance, materialize

        from flare_assets.defs.build import build_definitions
        from flare_assets.defs.resources import SparkResource
        from flare_assets.settings import Settings
        from flare_assets.spark import get_session

        settings = Settings.from_env()
        spark = get_session(settings)
        spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.bench")
        spark.range(DAYS * ROWS_PER_DAY).selectExpr(
            f"date_add(date'2024-01-01', cast(id div {ROWS_PER_DAY} as int)) AS day",
            "cast(id % 5 as string) AS kind",
            "cast(id % 100 as double) AS amount",
        ).writeTo("lakehouse.bench.sales").create()
        instance = DagsterInstance.ephemeral()
        resources = {"spark": SparkResource(stop_at_teardown=False)}
        keys = [(date(2024, 1, 1) + timedelta(days=d)).isoformat() for d in range(DAYS)]
        defs = {}
        for name in ("single-run", "multi-run", "warmup"):
            folder = Path(tmp) / name
            write(folder, _manifest(name), "m")
            defs[name] = list(build_definitions(settings, [folder]).assets or [])
        materialize(defs["warmup"], resources=resources, instance=instance, partition_key=keys[0])

        start = time.perf_counter()
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        assert materialize(defs["single-run"], resources=resources, instance=instance, tags=tags).success
        single = time.perf_counter() - start

        start = time.perf_counter()
        for key in keys:
            assert materialize(
                defs["multi-run"], resources=resources, instance=instance, partition_key=key
            ).success
        multi = time.perf_counter() - start

        one, many = spark.table("lakehouse.bench.single_run"), spark.table("lakehouse.bench.multi_run")
        same = one.exceptAll(many).count() + many.exceptAll(one).count()
        assert same == 0, "the two backfills disagree"
        ratio = single / multi
        print(f"{DAYS} daily partitions: one run {single:.1f}s, {DAYS} runs {multi:.1f}s -> {ratio:.3f}")
        return {"backfill_single_vs_multi": round(ratio, 3)}, {"single_run_s": single, "multi_run_s": multi}
