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
