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
    assert lines["lakehouse.retail.orders_enriched"][1] == str(table.current_snapshot().snapshot_id)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert runs and all(run.is_success for run in runs)
        # the partitioned demo asset was backfilled in one run over its first week
        (backfill,) = [r for r in runs if r.tags.get("dagster/asset_partition_range_start")]
        assert backfill.tags["dagster/asset_partition_range_end"] == "2024-01-07"
