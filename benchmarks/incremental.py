"""incremental_flatness: an incremental run over a history 10x as large / over 1x (goal <= 1.2).

Each side appends the same new batch to its source, then runs the same job reading only the
snapshots appended since its last run (`incrementalRead`). A full refresh of the same job over
both histories is timed beside it, for contrast. One Spark session, engine runs in-process,
rounds interleaved, medians compared."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flare_assets_tests.manifests import job, workflow, write

HISTORY_ROWS = 300_000
BATCH_ROWS = 20_000
SNAPSHOTS = 10


def _manifest(name: str, source: str, incremental: bool) -> dict:
    item: dict = {"name": "events", "dataset": f"dataos://lakehouse:bench/{source}"}
    if incremental:
        item["incrementalRead"] = {}
    sql = "SELECT id, kind, amount, amount * 2 AS doubled FROM events"
    output = {
        "name": "result",
        "dataset": f"dataos://lakehouse:bench/{name.replace('-', '_')}",
        "options": {"saveMode": "append" if incremental else "overwrite"},
    }
    return workflow(
        name, job([item], [{"name": "result", "sql": sql}], [output], showPreviewLines=0), dag="copy"
    )


def _rounds(
    rounds: int, append: Callable[[str, int], None], run: Callable[[str, str], float]
) -> dict[str, list[float]]:
    """Each round appends a batch to both sources, then runs the incremental and the full job on
    each; the sources alternate which goes first."""
    times: dict[str, list[float]] = {f"{m}_{s}": [] for m in ("inc", "full") for s in ("h1", "h10")}
    for n in range(rounds):
        for source in ("h1", "h10") if n % 2 == 0 else ("h10", "h1"):
            append(source, BATCH_ROWS)
            for mode in ("inc", "full"):
                times[f"{mode}_{source}"].append(run(mode, source))
    return times


def measure(rounds: int = 3) -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-inc-") as tmp:
        os.environ["FLARE_HOME"] = tmp
        from flare_assets.depots import load_depots
        from flare_assets.engine import RunContext, run_job
        from flare_assets.settings import Settings
        from flare_assets.spark import get_session
        from flare_assets.spec.loader import LoadedJob, load_jobs

        settings = Settings.from_env()
        spark = get_session(settings)
        depots = load_depots(settings.depots)
        spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.bench")
        next_id = {"h1": 0, "h10": 0}

        def append(source: str, rows: int) -> None:
            start = next_id[source]
            spark.range(start, start + rows).selectExpr(
                "id", "cast(id % 7 as string) AS kind", "cast(id % 1000 as double) AS amount"
            ).writeTo(f"lakehouse.bench.{source}").append()
            next_id[source] += rows

        def run(lj: LoadedJob) -> float:
            start = time.perf_counter()
            run_job(RunContext(spark, lj.dag_job.job, depots, settings, lj.name))
            return time.perf_counter() - start

        jobs = {}
        for source, factor in (("h1", 1), ("h10", 10)):
            spark.sql(
                f"CREATE TABLE lakehouse.bench.{source} (id BIGINT, kind STRING, amount DOUBLE) USING iceberg"
            )
            for _ in range(SNAPSHOTS):
                append(source, HISTORY_ROWS * factor // SNAPSHOTS)
            for mode in ("inc", "full"):
                folder = Path(tmp) / f"{mode}_{source}"
                write(folder, _manifest(f"{mode}-{source}", source, mode == "inc"), "m")
                (lj,) = load_jobs([folder], depots)
                jobs[(mode, source)] = lj
                run(lj)  # first run: all history

        times = _rounds(rounds, append, lambda mode, source: run(jobs[(mode, source)]))
        med = {k: statistics.median(v) for k, v in times.items()}
        flat = med["inc_h10"] / med["inc_h1"]
        full = med["full_h10"] / med["full_h1"]
        print(
            f"incremental run: {med['inc_h1']:.2f}s over {HISTORY_ROWS:,} rows of history, "
            f"{med['inc_h10']:.2f}s over {10 * HISTORY_ROWS:,} -> {flat:.2f}; "
            f"full refresh: {med['full_h1']:.2f}s -> {med['full_h10']:.2f}s ({full:.2f})"
        )
        return (
            {"incremental_flatness": round(flat, 3)},
            {"seconds": times, "full_refresh_ratio": round(full, 3), "history_rows": HISTORY_ROWS},
        )
