"""The Spark resource: one lazily started session per run process, shared by all its steps."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dagster import InitResourceContext
from dagster_pyspark import LazyPySparkResource
from pydantic import Field
from pyspark.sql import SparkSession

from flare_assets import spark as sparklib
from flare_assets.settings import Settings


class SparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session, built from flare_assets settings (jars, Iceberg, catalogs)."""

    spark_config: dict[str, Any] = Field(default_factory=dict, description="extra static Spark confs")
    stop_at_teardown: bool = Field(default=True, description="stop the JVM when the run ends")

    def session_settings(self, job_static: dict[str, str] | None = None) -> Settings:
        """FLARE_SPARK_CONF, then the resource's spark_config, then the job's own sizing."""
        settings = Settings.from_env()
        extra = {k: str(v) for k, v in self.spark_config.items()}
        return replace(settings, spark_conf={**settings.spark_conf, **extra, **(job_static or {})})

    def _init_session(self) -> None:
        if self._spark_session is None:
            self._spark_session = sparklib.get_session(self.session_settings())

    def session_for(self, job_static: dict[str, str]) -> tuple[SparkSession, list[str]]:
        """The run's session, started with the job's static confs if it is the first to ask.
        Returns the static keys that could not take effect (the JVM was already running)."""
        if self._spark_session is None:
            running = sparklib.running_conf()
            self._spark_session = sparklib.get_session(self.session_settings(job_static))
            if running is None:
                return self._spark_session, []
        running = sparklib.running_conf() or {}
        return self._spark_session, [k for k, v in job_static.items() if running.get(k) != v]

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._spark_session is not None and self.stop_at_teardown:
            sparklib.stop()
