"""A table being written is readable at its last commit (pyiceberg, no JVM); a writer killed mid-write
leaves it at its previous snapshot, and a rerun gives exactly the expected rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flare_assets.catalog import load_catalog
from flare_assets.query import read_rows
from flare_assets.settings import Settings
from flare_assets.spark import get_session

ROWS = 25  # x 0.2 s each: a write of about 5 s


def start_slow_writer(table: str, writer: int, marker: Path) -> subprocess.Popen:
    env = {**os.environ, "FLARE_SPARK_MASTER": "local[1]"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flare_assets_tests.writer",
            "slow",
            table,
            str(writer),
            str(ROWS),
            str(marker),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(marker: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "the writer never started"
        time.sleep(0.1)


@pytest.fixture
def table(settings: Settings) -> str:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.live")
    spark.sql("CREATE OR REPLACE TABLE lakehouse.live.events (writer INT, seq INT, batch INT) USING iceberg")
    spark.sql("INSERT INTO lakehouse.live.events VALUES (0, 0, 0), (0, 1, 0)")
    return "lakehouse.live.events"


@pytest.mark.slow
def test_query_during_a_long_write_sees_the_last_commit(
    settings: Settings, table: str, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    proc = start_slow_writer(table, 1, marker)
    wait_for(marker, proc)
    time.sleep(1.5)  # well into the write
    assert proc.poll() is None, "the write finished before it could be watched"
    during = read_rows("live.events", settings=settings)
    assert sorted((r["writer"], r["seq"]) for r in during) == [(0, 0), (0, 1)]
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    after = read_rows("live.events", settings=settings)
    assert len(after) == 2 + ROWS and {r["writer"] for r in after} == {0, 1}


@pytest.mark.slow
def test_writer_killed_mid_write_leaves_the_previous_snapshot(
    settings: Settings, table: str, tmp_path: Path
) -> None:
    before = load_catalog(settings=settings).load_table("live.events").current_snapshot().snapshot_id
    marker = tmp_path / "started"
    proc = start_slow_writer(table, 2, marker)
    wait_for(marker, proc)
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the Python driver and its JVM, as a crash takes both
    proc.wait(timeout=30)
    reloaded = load_catalog(settings=settings).load_table("live.events")
    assert reloaded.current_snapshot().snapshot_id == before
    assert sorted((r["writer"], r["seq"]) for r in read_rows("live.events", settings=settings)) == [
        (0, 0),
        (0, 1),
    ]
    rerun = start_slow_writer(table, 2, tmp_path / "again")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    rows = read_rows("live.events", settings=settings, limit=None)
    assert sorted((r["writer"], r["seq"]) for r in rows) == [(0, 0), (0, 1)] + [(2, i) for i in range(ROWS)]
