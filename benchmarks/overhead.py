"""overhead_ratio: the demo's batch job (retail/orders-enriched) through Dagster / the same job
written by hand in PySpark (benchmarks/handwritten_retail.py).

Both run as fresh processes on the same tables (each starts its JVM), interleaved, medians compared:
what flare_assets adds is Dagster's CLI and run machinery, manifest loading and the metadata it
records."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.demo_runs import ROOT, demo_env, generate_data, timed_demo

SELECT = "lakehouse/retail/orders_enriched,lakehouse/retail/customer_revenue"


def _dagster(env: dict[str, str]) -> float:
    cmd = ["dagster", "asset", "materialize", "-m", "flare_assets.definitions", "--select", SELECT]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return time.perf_counter() - start


def _handwritten(env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.handwritten_retail"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return time.perf_counter() - start


def measure(rounds: int = 3) -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        home = Path(tmp)
        generate_data(home)
        env = demo_env(home, FLARE_SPARK_MASTER="local[2]")
        timed_demo(env)  # creates the tables, so both sides below overwrite existing ones
        dagster, plain = [], []
        for _ in range(rounds):
            plain.append(_handwritten(env))
            dagster.append(_dagster(env))
    ratio = statistics.median(dagster) / statistics.median(plain)
    return {"overhead_ratio": round(ratio, 3)}, {"dagster_s": dagster, "handwritten_s": plain}
