"""The Spark resource: one lazily started session per run process, shared by all its steps."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from dagster import AssetExecutionContext, InitResourceContext
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, PrivateAttr
from pyspark.sql import SparkSession

from flare_assets import spark as sparklib
from flare_assets.depots import DepotMap
from flare_assets.engine.batch.tuning import covers, largest
from flare_assets.settings import Settings

# Op tag holding a Flare job's static Spark confs (its driver and executor sizing), so the first step
# of a run knows what every step of it will need before it starts the JVM.
STATIC_CONF_TAG = "flare/spark_static_conf"


def static_conf_tag(static: dict[str, str]) -> dict[str, str]:
    return {STATIC_CONF_TAG: json.dumps(static, sort_keys=True)} if static else {}


def run_static_confs(context: AssetExecutionContext) -> list[dict[str, str]]:
    """The static confs of every Flare job the run executes (its selected steps, in order)."""
    steps = context.dagster_run.step_keys_to_execute
    found = []
    for node in context.job_def.nodes_in_topological_order:
        if steps is not None and node.name not in steps:
            continue
        tag = node.definition.tags.get(STATIC_CONF_TAG)
        if tag:
            found.append(json.loads(tag))
    return found


class SparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session, built from flare_assets settings (jars, Iceberg, catalogs):
    `spark_session` and `spark_context` work as dagster-pyspark documents them."""

    spark_config: dict[str, Any] = Field(default_factory=dict, description="extra static Spark confs")
    stop_at_teardown: bool = Field(default=True, description="stop the JVM when the run ends")

    # one session per (settings, depot map) on the run's one JVM: two Flare component instances in one
    # code location each see their own catalogs
    _sessions: dict[str, SparkSession] = PrivateAttr(default_factory=dict)

    def session_settings(
        self, job_static: dict[str, str] | None = None, settings: Settings | None = None
    ) -> Settings:
        """`settings` (those the definitions were built with; the environment's when none) with
        their spark conf, then the resource's spark_config, then the job's own sizing."""
        settings = settings or Settings.from_env()
        extra = {k: str(v) for k, v in self.spark_config.items()}
        return replace(settings, spark_conf={**settings.spark_conf, **extra, **(job_static or {})})

    @property
    def spark_session(self) -> SparkSession:
        """The session of the environment's settings, started on first use."""
        return self.session_for({})[0]

    @property
    def spark_context(self) -> Any:
        return self.spark_session.sparkContext

    def session_for(
        self,
        job_static: dict[str, str],
        run_static: list[dict[str, str]] | None = None,
        settings: Settings | None = None,
        depots: DepotMap | None = None,
    ) -> tuple[SparkSession, list[str]]:
        """The run's session for `settings` and `depots` (the definitions' own). The first job to
        ask starts the JVM with the largest sizing among `run_static`, the static confs of every job
        the run will execute (tuning.largest), so a heavy job that is not first still gets its
        memory and cores. Returns the job's static keys the running JVM does not serve (a conf that
        cannot be merged, or a JVM started elsewhere)."""
        key = _session_key(settings, depots)
        if key not in self._sessions:
            running = sparklib.running_conf()
            sizing = largest([job_static, *(run_static or [])])
            session = sparklib.get_session(self.session_settings(sizing, settings), depots)
            self._sessions[key] = session
            if running is None:
                return session, []
        running = sparklib.running_conf() or {}
        return self._sessions[key], [k for k, v in job_static.items() if not covers(k, running.get(k), v)]

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._sessions and self.stop_at_teardown:
            sparklib.stop()


def _session_key(settings: Settings | None, depots: DepotMap | None) -> str:
    """What tells two sessions' catalogs apart: the settings and the depot map's iceberg depots."""
    names = sorted(depots.iceberg_depots()) if depots is not None else None
    return repr((settings, names))


# The one resource object every Definitions built here shares, so Definitions.merge of two Flare
# component instances accepts it (merge refuses different objects under one key).
SPARK = SparkResource()
