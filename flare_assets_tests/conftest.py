"""One Spark JVM per test process (sessions are cheap children of it); a FLARE_HOME per test module.

Tests marked `unit` (`make test-fast`) are pure planning and validation logic: they must not start or
use a SparkSession, and the guard in `pytest_runtest_setup` fails them if they do."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import Definitions, materialize

from flare_assets import spark as sparklib
from flare_assets.defs.build import build_definitions
from flare_assets.defs.resources import SparkResource
from flare_assets.settings import Settings

DEMO_DEPOTS = Path(__file__).resolve().parent.parent / "flare_assets" / "demo" / "depots.yaml"


@pytest.fixture(scope="module")
def flare_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("flare_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLARE_HOME", str(home))
        mp.setenv("FLARE_SPARK_MASTER", "local[2]")
        mp.delenv("FLARE_PIPELINES", raising=False)
        mp.delenv("FLARE_DEPOTS", raising=False)
        mp.delenv("FLARE_CATALOG_URI", raising=False)
        mp.delenv("FLARE_WAREHOUSE", raising=False)
        yield home


@pytest.fixture(scope="module")
def settings(flare_home: Path) -> Settings:
    return Settings.from_env()


_UNIT_GUARD = pytest.StashKey[tuple[pytest.MonkeyPatch, object]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """From before a unit test's first fixture to after its last teardown, creating a SparkContext or
    a SparkSession (a new one, or a session of a JVM an earlier test left running) fails the test."""
    if item.get_closest_marker("unit") is not None:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"{item.nodeid} is marked unit but starts Spark: remove its unit mark")

        mp = pytest.MonkeyPatch()
        mp.setattr(SparkContext, "__init__", refuse)
        mp.setattr(SparkSession, "__init__", refuse)
        item.stash[_UNIT_GUARD] = (mp, SparkContext._active_spark_context)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)
    finally:
        guard = item.stash.get(_UNIT_GUARD, None)
        if guard is not None:
            from pyspark import SparkContext

            mp, before = guard
            mp.undo()
            after = SparkContext._active_spark_context  # None too when a module's teardown stopped Spark
            assert after is None or after is before, f"{item.nodeid} is marked unit but started Spark"


@pytest.fixture(scope="session", autouse=True)
def _stop_spark_at_exit() -> Iterator[None]:
    yield
    sparklib.stop()


def shared_spark() -> SparkResource:
    """The Spark resource as runs get it, but leaving the JVM up for the next test."""
    return SparkResource(stop_at_teardown=False)


def materialize_all(defs: Definitions, selection: str | None = None, raise_on_error: bool = True):  # noqa: ANN201
    """Materializes every materializable unpartitioned asset of `defs` in-process, with the checks on
    them, as a Dagster run does (partitioned ones run per partition: see test_partitions)."""
    graph = defs.resolve_asset_graph()
    unpartitioned = [k for k in graph.materializable_asset_keys if graph.get(k).partitions_def is None]
    return materialize(
        [*(defs.assets or []), *(defs.asset_checks or [])],
        resources={"spark": shared_spark()},
        selection=selection or unpartitioned,
        raise_on_error=raise_on_error,
    )


def failure_message(result) -> str:  # noqa: ANN001
    """The failed step's error with all its causes, as the run's log shows it."""
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error, message = failure.step_failure_data.error, ""
    while error is not None:
        message, error = message + error.message, error.cause
    return message


def table_rows(settings: Settings, table: str) -> list[tuple]:
    """Every row of the table's current snapshot, read back with pyiceberg, sorted."""
    from flare_assets.catalog import load_catalog

    data = load_catalog(settings=settings).load_table(table).scan().to_arrow().to_pylist()
    return sorted(tuple(r.values()) for r in data)


def materialize_command(select: str) -> list[str]:
    """The Dagster CLI materializing `select` from the project's code location in a process of its
    own, as a launched run does."""
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "flare_assets.definitions"]
    return command + ["--select", select]


def write_manifest(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


__all__ = [
    "DEMO_DEPOTS",
    "build_definitions",
    "failure_message",
    "materialize_all",
    "materialize_command",
    "shared_spark",
    "table_rows",
    "write_manifest",
]
