"""code_location_load_ratio: loading the code location (importing flare_assets.definitions in a fresh
process, as every Dagster run, sensor and schedule tick does) with 500 manifests (1,000 assets)
against 1, measured side by side in alternating rounds.

run_overhead_500_manifests_ratio: one asset's run (`dagster asset materialize` of the first copy's
orders_enriched, a fresh process with its own JVM, wall time) with the 500 manifests in the code
location / with 1, on the same FLARE_HOME and demo data, alternating rounds; the median of the
rounds' ratios (as overhead_ratio), since a run's time on a shared machine varies more than the
difference measured.

Both folders' first copy is the same manifest writing the same table, and the manifest cache under
FLARE_HOME is warmed by an untimed load of each folder first, as any earlier load of the location
warms it (the details show the first, cold load too).

Beside them, the same two measures of a bare Dagster project of the same shape (dagster_floor.py):
dagster_floor_load_ratio is its load with 500 copies / with 1, and dagster_floor_run_ratio is the
run ratio above had Flare's run paid only what Dagster's own 500 copies add to a run (our run with 1
manifest plus that difference, over our run with 1)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from benchmarks import dagster_floor
from benchmarks.demo_runs import demo_env, generate_data, timed
from flare_assets.settings import DEMO_DIR

ROUNDS = 3
RUN_ROUNDS = 5
COPIES = 500
ONE_ASSET = "lakehouse/retail_0000/orders_enriched"


def copies(folder: Path, n: int) -> Path:
    """`n` copies of the demo's retail workflow, each writing its own two tables."""
    doc = yaml.safe_load((DEMO_DIR / "pipelines" / "retail.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        copy = yaml.safe_load(yaml.safe_dump(doc))
        copy["name"] = f"retail-{i:04d}"
        for dag in copy["workflow"]["dag"]:
            for out in dag["spec"]["stackSpec"]["job"]["outputs"]:
                out["dataset"] = out["dataset"].replace("lakehouse:retail/", f"lakehouse:retail_{i:04d}/")
        (folder / f"retail_{i:04d}.yaml").write_text(yaml.safe_dump(copy, sort_keys=False))
    return folder


CPU: dict[Path, list[float]] = {}  # CPU seconds of each timed load, by folder (less noisy on a busy machine)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_seconds(pipelines: Path, home: Path) -> float:
    env = {**os.environ, "FLARE_PIPELINES": str(pipelines), "FLARE_HOME": str(home)}
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", "import flare_assets.definitions"], env=env, check=True)
    elapsed = time.perf_counter() - start
    CPU.setdefault(pipelines, []).append(children_cpu() - cpu)
    return elapsed


def run_seconds(pipelines: Path, home: Path) -> float:
    """One asset materialized through the Dagster CLI in a fresh process, as a launched run is."""
    env = demo_env(home, FLARE_PIPELINES=str(pipelines), FLARE_SPARK_MASTER="local[2]")
    return timed(
        ["dagster", "asset", "materialize", "-m", "flare_assets.definitions", "--select", ONE_ASSET], env
    )


def alternating(
    rounds: int, timed: Callable[[Path, Path], float], one: Path, many: Path, home: Path
) -> tuple[list[float], list[float]]:
    small: list[float] = []
    large: list[float] = []
    for r in range(rounds):
        order = [(one, small), (many, large)] if r % 2 == 0 else [(many, large), (one, small)]
        for folder, times in order:
            times.append(timed(folder, home))
    return small, large


def measure() -> tuple[dict[str, float], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        root = Path(tmp)
        one, many = copies(root / "one", 1), copies(root / "many", COPIES)
        home = root / "home"
        cold = {"one_s": load_seconds(one, home), f"{COPIES}_s": load_seconds(many, home)}
        CPU.clear()
        small, large = alternating(ROUNDS, load_seconds, one, many, home)
        cpu_small, cpu_large = CPU[one], CPU[many]
        generate_data(home)
        run_seconds(one, home)  # creates the table and the class archive; every timed run overwrites
        run_seconds(many, home)
        run_small, run_large = alternating(RUN_ROUNDS, run_seconds, one, many, home)
        floor = floor_measures(root / "floor", run_small)
    ratio = statistics.median(large) / statistics.median(small)
    run_ratios = [round(m / o, 3) for m, o in zip(run_large, run_small, strict=True)]
    run_ratio = statistics.median(run_ratios)
    details = {
        "one_s": small,
        f"{COPIES}_s": large,
        "assets": 2 * COPIES,
        "cpu_one_s": cpu_small,
        f"cpu_{COPIES}_s": cpu_large,
        "cpu_ratio": round(statistics.median(cpu_large) / statistics.median(cpu_small), 2),
        "first_load_cold_cache_s": cold,
        "run_one_s": run_small,
        f"run_{COPIES}_s": run_large,
        "run_ratio_per_round": run_ratios,
        "run_asset": ONE_ASSET,
        "run_extra_s": round(statistics.median(run_large) - statistics.median(run_small), 2),
        **floor[1],
    }
    return {
        "code_location_load_ratio": round(ratio, 2),
        "run_overhead_500_manifests_ratio": round(run_ratio, 2),
        **floor[0],
    }, details


def floor_measures(root: Path, our_runs: list[float]) -> tuple[dict[str, float], dict[str, Any]]:
    """The bare Dagster project's load and run with 1 copy and with COPIES, alternating rounds."""
    one = dagster_floor.project(root / "one", 1)
    many = dagster_floor.project(root / "many", COPIES)
    home = root / "home"
    for folder in (one, many):
        dagster_floor.run_seconds(folder, home)  # untimed: byte-compiles the project, warms the instance
    small, large = alternating(ROUNDS, dagster_floor.load_seconds, one, many, home)
    run_small, run_large = alternating(RUN_ROUNDS, dagster_floor.run_seconds, one, many, home)
    extra = statistics.median(run_large) - statistics.median(run_small)
    ours = statistics.median(our_runs)
    figures = {
        "dagster_floor_load_ratio": round(statistics.median(large) / statistics.median(small), 2),
        "dagster_floor_run_ratio": round((ours + extra) / ours, 3),
    }
    details = {
        "dagster_floor_one_s": small,
        f"dagster_floor_{COPIES}_s": large,
        "dagster_floor_run_one_s": run_small,
        f"dagster_floor_run_{COPIES}_s": run_large,
        "dagster_floor_run_extra_s": round(extra, 2),
    }
    return figures, details
