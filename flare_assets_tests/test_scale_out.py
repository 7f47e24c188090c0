"""The demo on the engines a scaled-out deployment uses, for real on loopback: the Iceberg catalog
and Dagster's storage on PostgreSQL, Spark on a standalone cluster whose executors are separate JVMs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets_tests.servers import postgres, postgres_available, spark_standalone

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL server not installed"),
]


def scaled_env(home: Path, catalog_jdbc: str, master: str, dagster_pg: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLARE_", "DAGSTER_"))}
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    return {
        **env,
        "FLARE_HOME": str(home),
        "FLARE_CATALOG_URI": catalog_jdbc,
        "FLARE_CATALOG_USER": "postgres",
        "FLARE_SPARK_MASTER": master,
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_URL": dagster_pg,
    }


def test_demo_on_postgres_and_a_spark_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with postgres(["catalog", "dagster"]) as pg, spark_standalone(tmp_path / "spark", workers=2) as cluster:
        env = scaled_env(tmp_path / "home", pg.jdbc("catalog"), cluster.master_url, pg.url("dagster"))
        done = subprocess.run(
            [sys.executable, "-m", "flare_assets.cli", "demo"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr[-3000:]

        settings = Settings.from_env(env)
        assert settings.catalog_kind == "postgresql"
        catalog = load_catalog(settings=settings)
        assert catalog.load_table("retail.orders_enriched").scan().to_arrow().num_rows == 2000
        assert catalog.load_table("reporting.city_revenue").scan().to_arrow().num_rows == 8

        for key, value in env.items():
            if key.startswith(("DAGSTER_", "FLARE_")):
                monkeypatch.setenv(key, value)
        with DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            runs = instance.get_runs()
            assert runs and all(run.is_success for run in runs)
            event = instance.get_latest_materialization_event(
                AssetKey(["lakehouse", "retail", "orders_enriched"])
            )
            meta = event.asset_materialization.metadata
        app_id = meta["spark_app_id"].value
        assert meta["spark_master"].value == cluster.master_url
        # the executors ran in the workers' own JVMs: each worker keeps a folder per application
        assert any((work / app_id).is_dir() for work in cluster.work_dirs)
        assert app_id in {app["id"] for app in cluster.state()["completedapps"]}
