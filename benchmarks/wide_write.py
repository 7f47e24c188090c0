"""wide_write_*: the bucketing case scenario's shape (rows generated with explode(sequence(1, N)),
partitioned by identity(category), bucket(20, seg_id) and day(ts): about 6,000 partitions; a
2000m driver) materialized through the Dagster CLI, against a plain PySpark script with adaptive
execution off writing the same rows into a table of the same spec (benchmarks/plain_wide_write.py).

`FLARE_BENCH_WIDE_ROWS` sets N (default 10,000,000). Each side runs once, in a fresh process; the
peak resident memory of the Dagster run's process tree (Python, the JVM and their children) is
sampled every 0.2 s, in all (the figure) and its anonymous part (the details: heaps and native
buffers, without file pages such as memory-mapped shuffle blocks)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.demo_runs import ROOT, demo_env
from flare_assets_tests.manifests import job, output, workflow, write

ROWS = int(os.environ.get("FLARE_BENCH_WIDE_ROWS", "10000000"))
DRIVER_MEMORY = "2000m"
TABLE = "sample.bucket_large_data"

# The step's SQL; the plain script runs the very same text.
SQL = """
SELECT uuid, seg_id, ts,
       CASE WHEN cat > 0.67 THEN 'A' WHEN cat > 0.33 THEN 'B' ELSE 'C' END AS category
FROM (
  SELECT explode(rand_value) AS uuid,
         CAST(random() * 100 AS INT) AS seg_id,
         add_months(TIMESTAMP '2025-01-01 00:00:00', CAST(random() * 100 AS INT)) AS ts,
         random() AS cat
  FROM (SELECT sequence(1, {rows}) AS rand_value))
"""

PROPERTIES = {"write.format.default": "parquet", "write.metadata.compression-codec": "gzip"}
PARTITION_SPEC = [
    {"type": "identity", "column": "category"},
    {"type": "bucket", "column": "seg_id", "numBuckets": 20},
    {"type": "day", "column": "ts", "name": "day_partitioned"},
]
OUTPUT = output(
    "random_data",
    "dataos://lakehouse:sample/bucket_large_data",
    "overwrite",
    format="Iceberg",
    options={"iceberg": {"properties": PROPERTIES, "partitionSpec": PARTITION_SPEC}},
)


def manifest(rows: int) -> dict:
    steps = [{"name": "random_data", "sql": SQL.format(rows=rows).strip() + "\n"}]
    doc = workflow(
        "wide-write",
        job(steps=steps, outputs=[OUTPUT]),
        dag="bucketed",
        driver={"cores": 2, "memory": DRIVER_MEMORY},
        executor={"cores": 2, "instances": 1, "memory": "2000m"},
    )
    doc["workflow"]["dag"][0]["spec"].update(stack="flare:7.0", compute="runnable-default")
    return doc


def _status_kb(status: str, field: str) -> int:
    return next((int(x.split()[1]) for x in status.splitlines() if x.startswith(field + ":")), 0)


def _tree_rss_kb(root: int) -> tuple[int, int]:
    """Resident memory of a process and all its descendants, from /proc: all of it (VmRSS), and the
    anonymous part (RssAnon: heaps and native buffers, without file pages such as memory-mapped
    shuffle blocks and jars)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = (_status_kb(status, "VmRSS"), _status_kb(status, "RssAnon"))
    total, anon, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, (0, 0))[0]
        anon += rss.get(pid, (0, 0))[1]
        todo += children.get(pid, [])
    return total, anon


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, tuple[int, int]]:
    """Seconds and peak resident KiB (all, anonymous) of the command's process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0, 0]

    def sample() -> None:
        while proc.poll() is None:
            total, anon = _tree_rss_kb(proc.pid)
            peak[0], peak[1] = max(peak[0], total), max(peak[1], anon)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{err[-3000:]}{out[-1000:]}")
    return elapsed, (peak[0], peak[1])


def _tables(catalog: Any) -> tuple[int, Any, int, int, int]:
    """Rows, partitions and files of the table written through Dagster; partitions and rows of the
    plain script's, read back with pyiceberg."""
    table = catalog.load_table(TABLE)
    partitions = table.inspect.partitions()
    written = sum(partitions.column("record_count").to_pylist())
    plain = catalog.load_table(TABLE + "_plain").inspect.partitions()
    plain_rows = sum(plain.column("record_count").to_pylist())
    return written, partitions, len(table.inspect.files()), len(plain), plain_rows


def measure(rows: int = ROWS) -> tuple[dict[str, float], dict[str, object]]:
    from flare_assets.catalog import ensure_catalog, load_catalog
    from flare_assets.settings import Settings

    with tempfile.TemporaryDirectory(prefix="flare-bench-wide-") as tmp:
        home = Path(tmp)
        pipelines = home / "pipelines"
        write(pipelines, manifest(rows), "wide")
        env = demo_env(home, FLARE_SPARK_MASTER="local[2]", FLARE_PIPELINES=str(pipelines))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        old = {k: os.environ.get(k) for k in ("FLARE_HOME", "FLARE_PIPELINES")}
        os.environ.update(FLARE_HOME=str(home), FLARE_PIPELINES=str(pipelines))
        try:
            settings = Settings.from_env()
            ensure_catalog(settings, "lakehouse")
            plain_s, plain_kb = _run(
                [sys.executable, "-m", "benchmarks.plain_wide_write", str(rows), DRIVER_MEMORY], env
            )
            dagster_cmd = [sys.executable, "-m", "dagster", "asset", "materialize"]
            dagster_cmd += [
                "-m",
                "flare_assets.definitions",
                "--select",
                "lakehouse/sample/bucket_large_data",
            ]
            dagster_s, dagster_kb = _run(dagster_cmd, env)
            written, partitions, files, plain_partitions, plain_rows = _tables(
                load_catalog(settings=settings)
            )
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    figures = {
        "wide_write_rows": float(written),
        "wide_write_vs_plain_ratio": round(dagster_s / plain_s, 3),
        "wide_write_peak_rss_mb": round(dagster_kb[0] / 1024, 1),
    }
    return figures, {
        "generated_rows": rows,
        "driver_memory": DRIVER_MEMORY,
        "dagster_s": round(dagster_s, 1),
        "plain_aqe_off_s": round(plain_s, 1),
        "partitions": len(partitions),
        "data_files": files,
        "plain_rows": plain_rows,
        "plain_partitions": plain_partitions,
        "peak_anon_rss_mb": round(dagster_kb[1] / 1024, 1),
        "plain_peak_rss_mb": round(plain_kb[0] / 1024, 1),
        "plain_peak_anon_rss_mb": round(plain_kb[1] / 1024, 1),
        "peak_rss_mb_vs_driver_limit": f"{round(dagster_kb[0] / 1024)} MB resident "
        f"({round(dagster_kb[1] / 1024)} MB anonymous), driver heap {DRIVER_MEMORY}",
    }
