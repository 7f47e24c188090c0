"""The JVM class archive: built once per Java and jar set, in the background, then mapped by runs."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from flare_assets import jvm_archive
from flare_assets.settings import Settings
from flare_assets.spark import quick_jit, static_conf

# Starts a driver that must map the archive (-Xshare:on makes an unusable archive a start-up error).
START = """
import json, sys
from pyspark.sql import SparkSession
conf = json.loads(sys.argv[1])
builder = SparkSession.builder
for key, value in conf.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
print(spark.range(5).count(), spark.sparkContext._jvm.System.getProperty("java.vm.info"))
"""


def _start(conf: dict[str, str]) -> subprocess.CompletedProcess[str]:
    conf = {**conf, "spark.master": "local[1]", "spark.ui.enabled": "false"}
    conf[jvm_archive.DRIVER_OPTIONS] += " -Xshare:on"
    return subprocess.run(
        [sys.executable, "-c", START, json.dumps(conf)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_archive_is_built_once_then_every_driver_maps_it(settings: Settings, tmp_path: Path) -> None:
    conf = static_conf(settings)
    path = jvm_archive.archive_path(tmp_path, conf)

    assert jvm_archive.with_archive(conf, tmp_path) == conf  # none yet: starts without, builds behind
    assert path.with_suffix(".lock").exists()
    assert jvm_archive.start_build(path, conf) is None  # one builder per archive
    assert jvm_archive.ensure(conf, tmp_path) == path
    assert not path.with_suffix(".lock").exists() and not list(tmp_path.glob("*.tmp"))

    mapped = jvm_archive.with_archive(conf, tmp_path)
    assert f"-XX:SharedArchiveFile={path}" in mapped[jvm_archive.DRIVER_OPTIONS]
    started = _start(mapped)
    assert started.returncode == 0, started.stderr[-2000:]
    assert started.stdout.split()[0] == "5" and "sharing" in started.stdout

    other_jars = {**conf, "spark.jars": conf["spark.jars"] + ",/opt/extra.jar"}
    assert jvm_archive.archive_path(tmp_path, other_jars) != path  # another jar set, another archive


def test_a_broken_archive_fails_a_driver_that_requires_it(settings: Settings, tmp_path: Path) -> None:
    """What -Xshare:on above proves: a driver that cannot map its archive does not start."""
    conf = static_conf(settings)
    path = jvm_archive.archive_path(tmp_path, conf)
    path.write_bytes(b"not an archive" * 100)
    started = _start(jvm_archive.with_archive(conf, tmp_path))
    assert started.returncode != 0


@pytest.mark.unit
def test_off_starts_without_an_archive(settings: Settings) -> None:
    off = Settings.from_env({"FLARE_HOME": str(settings.home), "FLARE_JVM_ARCHIVE": "off"})
    assert off.jvm_archive is None
    conf = static_conf(off)
    assert jvm_archive.with_archive(conf, off.jvm_archive) == conf


def test_a_failed_build_is_not_retried_by_every_run(settings: Settings, tmp_path: Path) -> None:
    conf = {**static_conf(settings), "spark.jars": "/no/such.jar"}  # the builder's session cannot start
    path = jvm_archive.archive_path(tmp_path, conf)
    builder = jvm_archive.start_build(path, conf)
    assert builder is not None and builder.wait(timeout=300) != 0
    assert path.with_suffix(".lock").read_text() == jvm_archive.FAILED
    assert jvm_archive.start_build(path, conf) is None and not path.exists()


def test_a_quick_run_starts_its_driver_on_the_client_compiler(settings: Settings) -> None:
    """A small micro-batch's run (the sensor tags it flare/jvm: quick): C1 only, Java options added to
    the library path rather than replacing it."""
    own = replace(settings, spark_conf={jvm_archive.DRIVER_OPTIONS: "-Dflare.check=1"})
    options = static_conf(own)[jvm_archive.DRIVER_OPTIONS]
    assert options.startswith(static_conf(settings)[jvm_archive.DRIVER_OPTIONS]) and options.endswith(
        " -Dflare.check=1"
    )
    started = _start(quick_jit(static_conf(settings)))
    assert started.returncode == 0, started.stderr[-2000:]
    assert "emulated-client" in started.stdout
    assert "emulated-client" not in _start(static_conf(settings)).stdout
