"""Crash-safe pools: a run killed with `kill -9` while holding a pool slot does not block the pool
forever. The next run says at WARNING which run holds the slot, finds that run's worker gone, fails
it, frees its slot and completes. Real `dagster asset materialize` processes; rows read back with
pyiceberg."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, build_sensor_context
from dagster._core.storage.dagster_run import DagsterRun

from flare_assets.catalog import load_catalog
from flare_assets.defs.executor import WORKER_TAG
from flare_assets.defs.sensors import dead_runs_sensor
from flare_assets.settings import Settings
from flare_assets.workers import worker_alive, worker_identity
from flare_assets_tests.conftest import materialize_command
from flare_assets_tests.manifests import job, output, workflow, write

ROOT = Path(__file__).resolve().parent.parent

# The shipped dagster.yaml's settings, with run monitoring on and one slot per pool.
INSTANCE = """
telemetry:
  enabled: false
run_queue:
  dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    default_limit: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 5
  free_slots_after_run_end_seconds: 5
"""

MANIFEST = workflow(
    "pooled",
    job(
        [{"name": "src", "dataset": "dataos://landing:pool/things", "format": "json"}],
        [{"name": "things", "sql": "SELECT id, name FROM src"}],
        [output("things", "dataos://lakehouse:pool/things", "append", format="Iceberg")],
    ),
)
MANIFEST["workflow"]["dag"][0]["pool"] = "writers"


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sensor_fails_a_dead_run_and_frees_its_slot(tmp_path: Path) -> None:
    """flare_dead_runs (a sensor, on by default) reaps STARTED runs whose worker is gone."""
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("writers", 1)
        dead = DagsterRun(
            job_name="job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED,
            tags={WORKER_TAG: worker_identity(os.getpid()).replace(f":{os.getpid()}:", f":{dead_pid()}:")},
        )  # fmt: skip
        alive = DagsterRun(
            job_name="job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED,
            tags={WORKER_TAG: worker_identity()},
        )  # fmt: skip
        ended = DagsterRun(
            job_name="job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.CANCELED,
            tags={WORKER_TAG: dead.tags[WORKER_TAG]},
        )  # fmt: skip
        for run in (dead, alive, ended):
            instance.add_run(run)
        assert storage.claim_concurrency_slot("writers", dead.run_id, "load").is_claimed
        storage.set_concurrency_slots("other", 1)
        assert storage.claim_concurrency_slot("other", ended.run_id, "load").is_claimed
        assert worker_alive(dead.tags[WORKER_TAG]) is False and worker_alive(alive.tags[WORKER_TAG])
        result = dead_runs_sensor()(build_sensor_context(instance=instance))
        assert f"run {dead.run_id}: its worker" in result.skip_message
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.STARTED
        assert storage.get_concurrency_info("writers").claimed_slots == []
        assert storage.get_concurrency_info("other").claimed_slots == []
        assert f"run {ended.run_id} ended (CANCELED) but held pool slots: freed them" in result.skip_message


def _env(tmp_path: Path) -> dict[str, str]:
    home, dagster_home, pipelines = tmp_path / "home", tmp_path / "dagster", tmp_path / "pipelines"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(INSTANCE)
    write(pipelines, MANIFEST)
    landing = home / "landing" / "pool" / "things"
    landing.mkdir(parents=True)
    (landing / "part.json").write_text("\n".join(json.dumps({"id": i, "name": f"n{i}"}) for i in range(50)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLARE_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    env |= {"FLARE_PIPELINES": str(pipelines), "FLARE_SPARK_MASTER": "local[1]"}
    for key in ("FLARE_CATALOG_URI", "FLARE_WAREHOUSE", "FLARE_DEPOTS"):
        env.pop(key, None)
    return env


MATERIALIZE = materialize_command("lakehouse/pool/things")


@pytest.mark.slow
def test_killed_pooled_run_does_not_block_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: the killed run stayed STARTED holding the slot; the next run waited forever, saying
    # only "Step blocked by limit for pool" at DEBUG every 5 minutes
    env = _env(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with DagsterInstance.get():
        pass  # the instance's storage exists before two processes open it
    first_log = tmp_path / "first.log"
    first = subprocess.Popen(
        MATERIALIZE, env=env, cwd=ROOT, stdout=first_log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        with DagsterInstance.get() as instance:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                claimed = instance.event_log_storage.get_concurrency_info("writers").claimed_slots
                if claimed:
                    break
                assert first.poll() is None, first_log.read_text()[-3000:]
                time.sleep(0.1)
            else:
                pytest.fail("the first run never claimed the pool slot")
            os.kill(first.pid, signal.SIGKILL)  # the run worker, as `kill -9` would
            first.wait(timeout=30)
            (held,) = claimed
            dead_run = held.run_id
            assert instance.get_run_by_id(dead_run).status == DagsterRunStatus.STARTED
    finally:
        try:
            os.killpg(first.pid, signal.SIGKILL)  # its Spark JVM, if it had started one
        except ProcessLookupError:
            pass
    started = time.monotonic()
    second = subprocess.run(MATERIALIZE, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-4000:]
    (waits,) = [line for line in log.splitlines() if "waits for pool" in line]
    assert " - WARNING - " in waits
    assert (
        f"waits for pool 'writers' (limit 1, 1 in use), held by run {dead_run} (__ASSET_JOB, STARTED" in waits
    )
    (reaped,) = [line for line in log.splitlines() if "marked failed and its pool slots freed" in line]
    assert " - WARNING - " in reaped and f"run {dead_run}: its worker" in reaped
    print(waits, reaped, sep="\n", file=sys.stderr)
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(dead_run).status == DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("writers").claimed_slots == []
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("FLARE_")})
    rows = load_catalog(settings=settings).load_table("pool.things").scan().to_arrow()
    assert sorted(rows.column("id").to_pylist()) == list(range(50)), "the killed run wrote nothing"
    print(f"second run, from start to done after freeing the dead run's slot: {took:.1f} s", file=sys.stderr)
