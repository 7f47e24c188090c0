"""sparkConf: runtime confs apply to their job only; static ones are reported, not silently dropped."""

from __future__ import annotations

from pathlib import Path

from flare_assets.engine.batch.tuning import job_conf
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets_tests.conftest import materialize_command
from flare_assets_tests.manifests import job, workflow, write


def test_runtime_conf_scoped_to_the_job_and_static_conf_reported(settings: Settings) -> None:
    spark = get_session(settings)
    before = spark.conf.get("spark.sql.shuffle.partitions")
    conf = {
        "spark.sql.shuffle.partitions": "3",
        "spark.executor.memory": "2g",
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.iceberg.vectorization.enabled": "false",  # Iceberg's: read by each query
    }
    with job_conf(spark, conf) as static:
        assert static == ["spark.executor.memory"]
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert spark.conf.get("spark.sql.iceberg.vectorization.enabled") == "false"
        assert spark.sql("SELECT * FROM range(10) DISTRIBUTE BY id").rdd.getNumPartitions() == 3
    assert spark.conf.get("spark.sql.shuffle.partitions") == before
    assert spark.conf.get("spark.sql.adaptive.enabled") == "true"
    assert spark.conf.get("spark.sql.iceberg.vectorization.enabled", None) is None


def test_job_sizing_becomes_static_conf_of_the_run_session() -> None:
    from flare_assets.defs.resources import SparkResource
    from flare_assets.spec.model import StackSpec

    stack = StackSpec.model_validate(
        {
            "driver": {"cores": 1, "memory": "1200m"},
            "executor": {"cores": 2, "instances": 3, "memory": "2g"},
            "sparkConf": [{"spark.sql.shuffle.partitions": "8"}, {"spark.executor.memoryOverhead": "512m"}],
            "job": {
                "outputs": [{"name": "x", "dataset": "dataos://lakehouse:a/b"}],
                "inputs": [{"name": "x", "dataset": "dataos://lakehouse:a/c"}],
            },
        }
    )
    static = stack.static_conf()
    assert static == {
        "spark.executor.memoryOverhead": "512m",
        "spark.driver.cores": "1",
        "spark.driver.memory": "1200m",
        "spark.executor.cores": "2",
        "spark.executor.memory": "2g",
        "spark.executor.instances": "3",
    }
    conf = SparkResource(spark_config={"spark.driver.memory": "900m"}).session_settings(static).spark_conf
    assert conf["spark.driver.memory"] == "1200m" and conf["spark.executor.instances"] == "3"


def test_static_conf_on_a_running_jvm_is_reported(settings: Settings) -> None:
    from flare_assets.defs.resources import SparkResource

    get_session(settings)  # the JVM is up, as for the second job of a run
    resource = SparkResource(stop_at_teardown=False)
    _, ignored = resource.session_for({"spark.executor.memory": "3g", "spark.master": "local[2]"})
    assert ignored == ["spark.executor.memory"]  # the master already matches


def test_largest_sizing_of_the_jobs_of_a_run() -> None:
    from flare_assets.engine.batch.tuning import covers, largest

    merged = largest(
        [
            {"spark.driver.memory": "1000m", "spark.jars.packages": "a:b:1", "spark.executor.cores": "1"},
            {"spark.driver.memory": "2g", "spark.jars.packages": "a:b:2", "spark.executor.memory": "512m"},
            {"spark.driver.memory": "1500", "spark.kubernetes.driver.limit.cores": "2200m"},
        ]
    )
    assert merged == {
        "spark.driver.memory": "2g",
        "spark.jars.packages": "a:b:1",  # not a size: the first job's value stands
        "spark.executor.cores": "1",
        "spark.executor.memory": "512m",
        "spark.kubernetes.driver.limit.cores": "2200m",
    }
    assert covers("spark.driver.memory", "2g", "2000m") and not covers("spark.driver.memory", "1g", "1025m")
    assert covers("spark.kubernetes.driver.limit.cores", "3", "2200m")
    assert not covers("spark.jars.packages", "a:b:1", "a:b:2")


LIGHT = {"name": "light", "dataset": "dataos://lakehouse:sizing/light", "format": "Iceberg"}
HEAVY = {"name": "heavy", "dataset": "dataos://lakehouse:sizing/heavy", "format": "Iceberg"}
SIZED = workflow(
    "sized",
    job(steps=[{"name": "light", "sql": "SELECT id FROM range(5)"}], outputs=[LIGHT]),
    dag="light",
    driver={"memory": "1000m"},
)
SIZED["workflow"]["dag"].append(
    {
        **workflow(
            "sized",
            job([LIGHT], [{"name": "heavy", "sql": "SELECT id * 2 AS id FROM light"}], [HEAVY]),
            dag="heavy",
            driver={"memory": "1500m"},
        )["workflow"]["dag"][0],
        "depends": ["light"],
    }
)


def test_a_run_starts_its_jvm_with_the_largest_sizing_of_its_jobs(settings: Settings, tmp_path: Path) -> None:
    """The second job of the run asks for the bigger driver: the run's one JVM has it from the start."""
    import os
    import subprocess

    from dagster import AssetKey, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    write(tmp_path / "pipelines", SIZED)
    home = tmp_path / "dagster"
    home.mkdir()
    env = {**os.environ, "FLARE_PIPELINES": str(tmp_path / "pipelines"), "DAGSTER_HOME": str(home)}
    done = subprocess.run(
        materialize_command("lakehouse/sizing/light,lakehouse/sizing/heavy"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "static Spark conf" not in done.stderr
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    for name in ("light", "heavy"):
        event = instance.get_latest_materialization_event(AssetKey(["lakehouse", "sizing", name]))
        assert event is not None and event.asset_materialization is not None
        assert event.asset_materialization.metadata["spark_driver_memory"].value == "1500m"
