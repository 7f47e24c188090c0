"""overhead_ratio: the demo's batch job (retail/orders-enriched) through Dagster / the same job
written by hand in PySpark (benchmarks/handwritten_retail.py).

The script does the manifest's SQL: its steps, its writes and its assertion queries and 5-row
preview of each output. Both run as fresh processes on the same tables (each starts its JVM), in
alternating order, and the figure is the median of the rounds' ratios. What flare_assets adds is
Dagster's CLI and run machinery, manifest loading, the run tag and the metadata; what it saves is
JVM start-up (its class archive, built before timing). The details give the ratio against the
script without the checks (steps and writes only) and against the script started from the same
class archive, which isolates what flare_assets adds."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.demo_runs import ROOT, demo_env, generate_data, timed, timed_demo

SELECT = "lakehouse/retail/orders_enriched,lakehouse/retail/customer_revenue"


def _archive(env: dict[str, str]) -> str:
    done = subprocess.run(
        ["flare", "jvm-archive"], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def measure(rounds: int = 5) -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        home = Path(tmp)
        generate_data(home)
        env = demo_env(home, FLARE_SPARK_MASTER="local[2]")
        archive = _archive(env)
        timed_demo(env)  # creates the tables, so every run below overwrites existing ones
        dagster_cmd = ["dagster", "asset", "materialize", "-m", "flare_assets.definitions"]
        dagster_cmd += ["--select", SELECT]
        plain_cmd = [sys.executable, "-m", "benchmarks.handwritten_retail", "--checks"]
        commands = {
            "dagster": dagster_cmd,
            "plain": plain_cmd,
            "plain_no_checks": plain_cmd[:-1],
            "plain_archive": [*plain_cmd, "--jvm-archive", archive],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for n in range(rounds):
            order = list(commands) if n % 2 == 0 else list(reversed(commands))
            for name in order:
                times[name].append(timed(commands[name], env))

    def ratio(baseline: str) -> list[float]:
        return [round(d / p, 3) for d, p in zip(times["dagster"], times[baseline], strict=True)]

    return {"overhead_ratio": statistics.median(ratio("plain"))}, {
        "dagster_s": times["dagster"],
        "handwritten_s": times["plain"],
        "handwritten_steps_and_writes_only_s": times["plain_no_checks"],
        "handwritten_with_class_archive_s": times["plain_archive"],
        "ratio_per_round": ratio("plain"),
        "ratio_vs_steps_and_writes_only": statistics.median(ratio("plain_no_checks")),
        "ratio_vs_handwritten_with_class_archive": statistics.median(ratio("plain_archive")),
    }
