"""What Dagster alone costs for a code location shaped like N copies of the demo's retail manifest:
a component in a defs.yaml building, per copy, one multi-asset of two asset specs (each depending
on the two landing sources) with three check specs and an op config of two fields, and one schedule
of its assets' job; the in-process executor; the collector paused for the load, as in
flare_assets.definitions. No manifest is read and no Spark runs: the difference between N copies and
one is Dagster's own construction, the floor under code_location_load_ratio and
run_overhead_500_manifests_ratio."""

# no `from __future__ import annotations`: Resolvable reads the field types at runtime

import gc
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Component,
    ComponentLoadContext,
    Definitions,
    Field,
    MaterializeResult,
    Resolvable,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
    multi_asset,
)

from benchmarks.demo_runs import ROOT, timed

PACKAGE = "floor_defs"
SOURCES = [AssetKey(["landing", "retail", "customers"]), AssetKey(["landing", "retail", "orders"])]
OUTPUTS = ["orders_enriched", "customer_revenue"]
CONFIG = {"reset_state": Field(bool, default_value=False), "state": Field(dict, default_value={})}

DEFINITIONS_PY = """\
import gc
from pathlib import Path

gc.disable()
from dagster import load_from_defs_folder

defs = load_from_defs_folder(path_within_project=Path(__file__).parent)
gc.enable()
gc.freeze()
"""

PYPROJECT = f"""\
[project]
name = "{PACKAGE}"
version = "0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "{PACKAGE}"
defs_module = "{PACKAGE}.defs"
"""


def _copy(i: int) -> tuple[AssetsDefinition, ScheduleDefinition]:
    collection = f"retail_{i:04d}"
    specs = [
        AssetSpec(
            key=AssetKey(["lakehouse", collection, name]),
            group_name=collection,
            kinds={"spark", "iceberg"},
            deps=SOURCES,
            tags={"tier": "silver"},
            owners=["team:data_engineering"],
            metadata={"dataset": f"dataos://lakehouse:{collection}/{name}", "job": "orders-enriched"},
        )
        for name in OUTPUTS
    ]
    checks = [AssetCheckSpec(name=f"check_{n}", asset=specs[n % 2].key) for n in range(3)]

    @multi_asset(
        name=f"{collection}__orders_enriched",
        specs=specs,
        check_specs=checks,
        can_subset=True,
        config_schema=CONFIG,
    )
    def _compute(context: AssetExecutionContext) -> Iterator[MaterializeResult]:
        for key in context.selected_asset_keys:
            yield MaterializeResult(asset_key=key)

    asset_job = define_asset_job(f"{collection}_job", selection=[spec.key for spec in specs])
    schedule = ScheduleDefinition(name=f"{collection}_schedule", cron_schedule="0 2 * * *", job=asset_job)
    return _compute, schedule


@dataclass
class BareCopies(Component, Resolvable):
    """`copies` retail-shaped multi-assets and their schedules, built by Dagster alone."""

    copies: int = 1

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        enabled = gc.isenabled()
        gc.disable()  # as build_definitions does (importing its no_cyclic_gc would load Flare's modules)
        try:
            built = [_copy(i) for i in range(self.copies)]
        finally:
            if enabled:
                gc.enable()
        return Definitions(
            assets=[AssetSpec(key=k, group_name="sources") for k in SOURCES] + [a for a, _ in built],
            schedules=[s for _, s in built],
            executor=in_process_executor,
        )


def project(folder: Path, copies: int) -> Path:
    """A Dagster project under `folder` whose code location is `copies` bare copies."""
    package = folder / PACKAGE
    defs = package / "defs" / "copies"
    defs.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(DEFINITIONS_PY)
    (defs / "defs.yaml").write_text(f"type: {__name__}.BareCopies\nattributes:\n  copies: {copies}\n")
    return folder


def _env(folder: Path, home: Path) -> dict[str, str]:
    path = os.pathsep.join([str(folder), str(ROOT), os.environ.get("PYTHONPATH", "")])
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    return {**os.environ, "PYTHONPATH": path, "DAGSTER_HOME": str(home / "dagster")}


def load_seconds(folder: Path, home: Path) -> float:
    """Importing the project's definitions in a fresh process."""
    start = time.perf_counter()
    cmd = [sys.executable, "-c", f"import {PACKAGE}.definitions"]
    subprocess.run(cmd, env=_env(folder, home), cwd=folder, check=True)
    return time.perf_counter() - start


def run_seconds(folder: Path, home: Path) -> float:
    """One asset materialized through the Dagster CLI in a fresh process, as the Flare run is."""
    cmd = ["dagster", "asset", "materialize", "-m", f"{PACKAGE}.definitions"]
    return timed(cmd + ["--select", "lakehouse/retail_0000/orders_enriched"], _env(folder, home), folder)
