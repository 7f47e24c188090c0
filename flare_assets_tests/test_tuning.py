"""sparkConf: runtime confs apply to their job only; static ones are reported, not silently dropped."""

from __future__ import annotations

from flare_assets.engine.tuning import job_conf
from flare_assets.settings import Settings
from flare_assets.spark import get_session


def test_runtime_conf_scoped_to_the_job_and_static_conf_reported(settings: Settings) -> None:
    spark = get_session(settings)
    before = spark.conf.get("spark.sql.shuffle.partitions")
    conf = {
        "spark.sql.shuffle.partitions": "3",
        "spark.executor.memory": "2g",
        "spark.sql.adaptive.enabled": "false",
    }
    with job_conf(spark, conf) as static:
        assert static == ["spark.executor.memory"]
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert spark.sql("SELECT * FROM range(10) DISTRIBUTE BY id").rdd.getNumPartitions() == 3
    assert spark.conf.get("spark.sql.shuffle.partitions") == before
    assert spark.conf.get("spark.sql.adaptive.enabled") == "true"


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
