"""The `dg` CLI on the project: `dg check defs` and `dg list defs` load the component-built code
location, and `dg launch` backfills a range of partitions of a Flare asset."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path

import pytest

from flare_assets.settings import Settings
from flare_assets_tests.conftest import table_rows

ROOT = Path(__file__).resolve().parent.parent

PARTITIONED = """
version: v1
name: daily
type: workflow
workflow:
  dag:
    - name: daily-totals
      spec:
        stackSpec:
          job:
            partitions:
              backfill: single-run
              dimensions:
                - {name: day, type: daily, column: day, start: "2024-01-01", end: "2024-01-10", timezone: UTC}
            inputs:
              - name: sales
                dataset: dataos://landing:raw/sales
                format: json
            steps:
              - sequence:
                  - name: totals
                    sql: >
                      SELECT CAST(ts AS DATE) AS day, SUM(amount) AS amount FROM sales
                      WHERE ts >= timestamp'$|day_start|' AND ts < timestamp'$|day_end|'
                      GROUP BY CAST(ts AS DATE)
            outputs:
              - name: totals
                dataset: dataos://lakehouse:daily/totals
                options:
                  saveMode: overwrite
"""


def dg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`dg ARGS` at the repository root, with this checkout first on the path."""
    base = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        ["dg", *args], cwd=ROOT, env={**base, **(env or {})}, capture_output=True, text=True, timeout=600
    )


def test_dg_check_and_list_defs(flare_home: Path) -> None:
    checked = dg("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All component YAML validated successfully." in checked.stdout
    assert "All definitions loaded successfully." in checked.stdout
    listed = dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    keys = {a["asset_key"] for a in found["assets"]}
    assert {"lakehouse/retail/orders_enriched", "lakehouse/retail/daily_city_orders"} <= keys
    assert {s["name"] for s in found["sensors"]} >= {"flare_table_health", "flare_dead_runs"}
    sources = {a["source"] for a in found["assets"]}
    assert sources == {"flare_assets/defs_root/flare/defs.yaml:3"}


@pytest.mark.slow  # a dg process, a run process and its JVM: about a minute
def test_dg_launch_a_partition_range(flare_home: Path, tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "daily.yaml").write_text(PARTITIONED)
    landing = flare_home / "landing" / "raw" / "sales"
    landing.mkdir(parents=True)
    rows = [{"ts": f"2024-01-0{d} 10:00:00", "amount": d * 10} for d in (1, 2, 3, 4)]
    (landing / "part-1.json").write_text("\n".join(json.dumps(r) for r in rows))
    env = {"FLARE_PIPELINES": str(pipelines), "DAGSTER_HOME": str(flare_home / "dagster")}
    (flare_home / "dagster").mkdir()
    launched = dg(
        "launch",
        "--assets",
        "lakehouse/daily/totals",
        "--partition-range",
        "2024-01-02...2024-01-03",
        env=env,
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert table_rows(Settings.from_env(), "daily.totals") == [(date(2024, 1, 2), 20), (date(2024, 1, 3), 30)]
