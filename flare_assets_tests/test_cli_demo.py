"""The README's main command and the Dagster CLI, as a user runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_dagster_definitions_validate(flare_home: Path) -> None:
    done = subprocess.run(
        ["dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(flare_home)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Validation successful" in done.stdout + done.stderr


@pytest.mark.slow
def test_flare_demo_materializes_through_dagster(settings: Settings) -> None:
    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    done = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "demo"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {
        line.split()[0]: line.split()[1:]
        for line in done.stdout.splitlines()
        if line.startswith("lakehouse.")
    }
    assert lines["lakehouse.retail.orders_enriched"][0] == "2000"
    table = load_catalog(settings=settings).load_table("retail.orders_enriched")
    rows, snapshots, files, checks, snapshot_id = lines["lakehouse.retail.orders_enriched"]
    assert snapshot_id == str(table.current_snapshot().snapshot_id)
    assert (int(snapshots), int(files)) == (
        len(table.snapshots()),
        int(table.current_snapshot().summary["total-data-files"]),
    )
    # order_id_unique, amount_1 and the retail-quality job's four, read back from the Dagster instance
    assert checks == "6/6"
    assert "running retail__orders_enriched" in done.stdout  # progress while the run goes on
    assert done.stdout.strip().splitlines()[-1].endswith(" checks passed")
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert runs and all(run.is_success for run in runs)
        # the partitioned demo asset was backfilled in one run over its first week
        (backfill,) = [r for r in runs if r.tags.get("dagster/asset_partition_range_start")]
        assert backfill.tags["dagster/asset_partition_range_end"] == "2024-01-07"
        # and one table had its maintenance run
        maintained = [r for r in runs if r.job_name.startswith("flare_maintenance")]
        assert [
            (r.job_name, r.run_config["ops"][f"{r.job_name}_op"]["config"]["tables"]) for r in maintained
        ] == [("flare_maintenance__lakehouse_retail_daily_sales", ["lakehouse.retail.daily_sales"])]
