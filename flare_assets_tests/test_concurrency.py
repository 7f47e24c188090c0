"""Separate Spark processes committing to one table of the embedded catalog at once lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets.spark import get_session


def run_writers(settings: Settings, table: str, writers: int, commits: int, tmp_path: Path) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.conc")
    spark.sql(f"CREATE TABLE {table} (writer INT, seq INT) USING iceberg")
    go = tmp_path / "go"
    env = {**os.environ, "FLARE_SPARK_MASTER": "local[1]"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "flare_assets_tests.writer", table, str(w), str(commits), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    time.sleep(1)
    go.touch()
    failures = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            failures.append(err[-2000:])
    assert not failures, failures[0]


@pytest.mark.slow
def test_four_processes_ten_commits_each(settings: Settings, tmp_path: Path) -> None:
    run_writers(settings, "lakehouse.conc.four", writers=4, commits=10, tmp_path=tmp_path)
    table = load_catalog(settings=settings).load_table("conc.four")
    rows = table.scan().to_arrow().to_pylist()
    assert sorted((r["writer"], r["seq"]) for r in rows) == [(w, i) for w in range(4) for i in range(10)]
    appends = [s for s in table.snapshots() if s.summary and s.summary.operation.value == "append"]
    assert len(appends) == 40
