"""The Spark resource: one lazily started session per run process, shared by all its steps."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dagster import InitResourceContext
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from flare_assets import spark as sparklib
from flare_assets.settings import Settings


class SparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session, built from flare_assets settings (jars, Iceberg, catalogs)."""

    spark_config: dict[str, Any] = Field(default_factory=dict, description="extra static Spark confs")
    stop_at_teardown: bool = Field(default=True, description="stop the JVM when the run ends")

    def _init_session(self) -> None:
        if self._spark_session is None:
            settings = Settings.from_env()
            if self.spark_config:
                extra = {k: str(v) for k, v in self.spark_config.items()}
                settings = replace(settings, spark_conf={**settings.spark_conf, **extra})
            self._spark_session = sparklib.get_session(settings)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._spark_session is not None and self.stop_at_teardown:
            sparklib.stop()
