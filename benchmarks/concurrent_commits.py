"""concurrent_commits_lost: commits lost when 8 writer processes append 10 commits each into one
table on the embedded catalog (SQLite JdbcCatalog), all at once. Each writer is its own JVM, as
every Dagster run is; rows and append snapshots are counted back with pyiceberg."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.demo_runs import demo_env
from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets_tests.writer import race

TABLE = "lakehouse.bench.commits"


def measure(writers: int = 8, commits: int = 10) -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        home = Path(tmp)
        env = demo_env(home)
        settings = Settings.from_env(env)
        start = time.perf_counter()
        done = race(settings, "append", TABLE, writers, commits, home, env=env)
        elapsed = time.perf_counter() - start
        table = load_catalog(settings=settings).load_table(TABLE.removeprefix("lakehouse."))
        rows = table.scan().to_arrow().num_rows
        appends = sum(1 for s in table.snapshots() if s.summary and s.summary.operation.value == "append")
    failed = [err.strip().splitlines()[-1] for code, err in done if code != 0 and err.strip()]
    details = {
        "writers": writers,
        "commits_per_writer": commits,
        "rows": rows,
        "append_snapshots": appends,
        "failed_writers": len([c for c, _ in done if c != 0]),
        "first_failure": failed[0] if failed else None,
        "seconds": round(elapsed, 1),
    }
    return {"concurrent_commits_lost": writers * commits - appends}, details
