"""The `dg` CLI on the project: `dg check defs` and `dg list defs` load the component-built code
location, and `dg launch` backfills a range of partitions of a Flare asset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
import yaml

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


PROJECT = """
[project]
name = "my_project"
version = "0.1.0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "my_project"
registry_modules = ["flare_assets"]  # what the installed package's entry point does
"""

DEFINITIONS = """
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


def dg(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`dg ARGS` in `cwd` (the repository root), with this checkout first on the path."""
    paths = [str(ROOT), str(cwd), os.environ.get("PYTHONPATH", "")]
    base = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        ["dg", *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=600
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


def test_dg_scaffold_into_another_project(flare_home: Path, tmp_path: Path) -> None:
    """The README's way in: an existing dg project scaffolds the component, drops a manifest in."""
    (tmp_path / "pyproject.toml").write_text(PROJECT)
    (tmp_path / "my_project" / "defs").mkdir(parents=True)
    (tmp_path / "my_project" / "__init__.py").write_text("")
    (tmp_path / "my_project" / "defs" / "__init__.py").write_text("")
    (tmp_path / "my_project" / "definitions.py").write_text(DEFINITIONS)
    made = dg("scaffold", "defs", "flare_assets.FlareWorkflows", "my_flare", cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    folder = tmp_path / "my_project" / "defs" / "my_flare"
    assert yaml.safe_load((folder / "defs.yaml").read_text()) == {
        "type": "flare_assets.FlareWorkflows",
        "attributes": {"manifests": ["pipelines"], "depots": "depots.yaml"},
    }
    shutil.copy(ROOT / "flare_assets" / "demo" / "pipelines" / "directory.yaml", folder / "pipelines")
    checked = dg("check", "defs", cwd=tmp_path)
    assert "All definitions loaded successfully." in checked.stdout, checked.stdout + checked.stderr
    listed = json.loads(dg("list", "defs", "--json", cwd=tmp_path).stdout)
    assert {a["asset_key"] for a in listed["assets"]} == {
        "lakehouse/retail/customer_directory",
        "landing/retail/customers",
    }
