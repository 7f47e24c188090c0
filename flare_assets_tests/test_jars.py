"""Jar resolution order and its errors. No JVM is started."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from flare_assets import jars
from flare_assets.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def base(tmp_path: Path) -> Settings:
    return Settings.from_env({"FLARE_HOME": str(tmp_path)})


def test_env_path_comes_first(base: Settings, tmp_path: Path) -> None:
    jar = tmp_path / "my-iceberg.jar"
    jar.write_bytes(b"")
    found = jars.resolve(replace(base, iceberg_jar=str(jar)))
    assert found.paths[0] == str(jar)


def test_pip_package_jar_is_used(base: Settings) -> None:
    found = jars.resolve(base)
    assert found.paths[0].endswith(
        "snowpark_connect_deps_iceberg/jars/iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
    )
    assert found.paths[1].endswith("sqlite-jdbc.jar")
    assert not found.packages


def test_maven_when_allowed_and_nothing_local(base: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jars, "_pip_iceberg_jar", lambda: None)
    monkeypatch.setattr(jars, "SQLITE_JARS", ("/nonexistent/sqlite-jdbc.jar",))
    found = jars.resolve(replace(base, allow_maven=True))
    assert found.packages == [jars.ICEBERG_MAVEN, jars.SQLITE_MAVEN]


def test_missing_jars_name_what_to_install(base: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jars, "_pip_iceberg_jar", lambda: None)
    with pytest.raises(jars.MissingDependency, match=r"pip install 'snowpark-connect-deps-iceberg==1.0.2'"):
        jars.resolve(base)
    monkeypatch.undo()
    monkeypatch.setattr(jars, "SQLITE_JARS", ("/nonexistent/sqlite-jdbc.jar",))
    with pytest.raises(jars.MissingDependency, match=r"apt-get install libxerial-sqlite-jdbc-java"):
        jars.resolve(base)


def test_env_path_that_does_not_exist(base: Settings) -> None:
    with pytest.raises(jars.MissingDependency, match="FLARE_ICEBERG_JAR points to /no/such.jar"):
        jars.resolve(replace(base, iceberg_jar="/no/such.jar"))


def test_missing_java(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(jars.shutil, "which", lambda _: None)
    with pytest.raises(jars.MissingDependency, match="Java 17 is required.*openjdk-17-jre-headless"):
        jars.require_java()
