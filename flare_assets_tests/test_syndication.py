"""Outputs shipped elsewhere: file depots (csv, parquet, json; partitioned or single) and another
catalog; plus multi-output jobs, caching and explain."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets_tests.conftest import build_definitions, failure_message, materialize_all

DEPOTS = {
    "depots": {
        "lakehouse": {"type": "iceberg"},
        "archive": {"type": "iceberg"},
        "landing": {"type": "file", "path": "landing", "format": "json"},
        "export": {"type": "file", "path": "export", "format": "csv", "options": {"sep": ";"}},
    }
}


@pytest.fixture(scope="module")
def depots(flare_home: Path) -> Path:
    path = flare_home / "depots.yaml"
    path.write_text(yaml.safe_dump(DEPOTS, sort_keys=False))
    return path


@pytest.fixture
def env(depots: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FLARE_DEPOTS", str(depots))
    fresh = Settings.from_env()
    spark = get_session(fresh)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.src")
    spark.sql("CREATE OR REPLACE TABLE lakehouse.src.sales (id INT, region STRING, amount INT) USING iceberg")
    spark.sql(
        "INSERT INTO lakehouse.src.sales VALUES (1, 'eu', 10), (2, 'eu', 20), (3, 'us', 30), (4, 'apac', 40)"
    )
    return fresh


def job(outputs: list[dict], steps: list[dict] | None = None, **extra: object) -> dict:
    return {
        "version": "v1",
        "name": "ship",
        "type": "workflow",
        "workflow": {
            "dag": [
                {
                    "name": "ship",
                    "spec": {
                        "stackSpec": {
                            "job": {
                                "inputs": [{"name": "sales", "dataset": "dataos://lakehouse:src/sales"}],
                                "steps": [
                                    {"sequence": steps or [{"name": "out", "sql": "SELECT * FROM sales"}]}
                                ],
                                "outputs": outputs,
                                **extra,
                            }
                        }
                    },
                }
            ]
        },
    }


def run(settings: Settings, folder: Path, doc: dict, ok: bool = True):  # noqa: ANN201
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.yaml").write_text(yaml.safe_dump(doc))
    result = materialize_all(build_definitions(settings, [folder]), raise_on_error=False)
    assert result.success is ok, failure_message(result) if ok else ""
    return result


def test_file_outputs_partitioned_and_single(env: Settings, tmp_path: Path) -> None:
    outputs = [
        {
            "name": "out",
            "dataset": "dataos://export:sales/by_region",
            "format": "parquet",
            "options": {"saveMode": "overwrite", "partitionBy": ["region"]},
        },
    ]
    run(env, tmp_path / "a", job(outputs))
    root = env.resolve("export") / "sales" / "by_region"
    assert sorted(p.name for p in root.glob("region=*")) == ["region=apac", "region=eu", "region=us"]
    assert sorted(pq.read_table(root).column("id").to_pylist()) == [1, 2, 3, 4]

    outputs = [
        {
            "name": "out",
            "dataset": "dataos://export:sales/single",
            "options": {"saveMode": "overwrite", "extraOptions": {"coalesce": 1}},
        }
    ]
    run(env, tmp_path / "b", job(outputs))
    (single,) = (env.resolve("export") / "sales" / "single").glob("*.csv")
    rows = list(csv.DictReader(single.open(), delimiter=";"))  # the depot's own writer options apply
    assert sorted(int(r["amount"]) for r in rows) == [10, 20, 30, 40]

    outputs = [{"name": "out", "dataset": "dataos://landing:sales/copy", "options": {"saveMode": "append"}}]
    for _ in range(2):
        run(env, tmp_path / "c", job(outputs))
    lines = [
        json.loads(x)
        for f in (env.resolve("landing") / "sales" / "copy").glob("*.json")
        for x in f.read_text().splitlines()
    ]
    assert len(lines) == 8


def test_files_on_an_iceberg_depot_land_in_its_storage_not_as_a_table(env: Settings, tmp_path: Path) -> None:
    outputs = [
        {
            "name": "out",
            "dataset": "dataos://lakehouse:syndicate/sales_csv?acl=rw",
            "options": {"file": {"saveMode": "Overwrite", "outputType": "CSV"}},
        }
    ]
    result = run(env, tmp_path, job(outputs))
    files = list((env.resolve("lakehouse") / "syndicate" / "sales_csv").glob("*.csv"))
    rows = [r for f in files for r in csv.DictReader(f.open())]
    assert sorted(int(r["amount"]) for r in rows) == [10, 20, 30, 40]
    assert not load_catalog(settings=env).table_exists("syndicate.sales_csv")
    (mat,) = result.get_asset_materialization_events()
    assert mat.asset_key.path == ["lakehouse", "syndicate", "sales_csv"]


def test_another_catalog_and_several_outputs_computed_once(env: Settings, tmp_path: Path) -> None:
    steps = [
        {
            "name": "eu",
            "sql": "SELECT * FROM sales WHERE region = 'eu'",
            "commands": [{"name": "persist", "level": "MEMORY_ONLY"}],
        },
        {"name": "eu_total", "sql": "SELECT sum(amount) AS total FROM eu"},
    ]
    outputs = [
        {"name": "eu", "dataset": "dataos://archive:shipped/eu_sales", "options": {"saveMode": "overwrite"}},
        {
            "name": "eu_total",
            "dataset": "dataos://lakehouse:shipped/eu_total",
            "options": {"saveMode": "overwrite"},
        },
    ]
    result = run(env, tmp_path, job(outputs, steps, explain=True, logLevel="INFO"))
    archived = load_catalog("archive", env).load_table("shipped.eu_sales").scan().to_arrow().to_pylist()
    assert sorted(r["id"] for r in archived) == [1, 2]
    assert load_catalog(settings=env).load_table("shipped.eu_total").scan().to_arrow().to_pylist() == [
        {"total": 30}
    ]
    assert not load_catalog(settings=env).table_exists("shipped.eu_sales")  # the other catalog only
    mats = {
        m.asset_key.path[0]: m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    assert mats["archive"]["cached_steps"].value == "eu"
    assert "== Physical Plan ==" in mats["archive"]["plans"].value
    # released at the end of the job: Spark's cache (shared by all sessions of the JVM) is empty again
    assert get_session(env)._jsparkSession.sharedState().cacheManager().isEmpty()


def test_a_failing_output_writes_no_output(env: Settings, tmp_path: Path) -> None:
    steps = [
        {"name": "good", "sql": "SELECT * FROM sales"},
        {"name": "bad", "sql": "SELECT id, assert_true(amount < 35, 'amount too large') AS ok FROM sales"},
    ]
    outputs = [
        {"name": "good", "dataset": "dataos://lakehouse:shipped/good", "options": {"saveMode": "append"}},
        {"name": "bad", "dataset": "dataos://lakehouse:shipped/bad", "options": {"saveMode": "append"}},
    ]
    result = run(env, tmp_path, job(outputs, steps), ok=False)
    assert "output 'bad' could not be computed, nothing was written: " in failure_message(result)
    assert "amount too large" in failure_message(result)
    assert not load_catalog(settings=env).table_exists("shipped.good")
