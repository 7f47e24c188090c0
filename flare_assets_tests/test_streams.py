"""Stream jobs: a sensor per job launching one run per batch, malformed records quarantined,
exactly-once across a killed run, and a continuous run that reports each micro-batch and stops."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
    materialize,
)

from flare_assets import spark as sparklib
from flare_assets.catalog import load_catalog
from flare_assets.defs.stream_assets import JVM_TAG, QUICK_JVM, STREAM_TAG
from flare_assets.depots import load_depots
from flare_assets.engine.stream.checkpoints import landing
from flare_assets.settings import Settings
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import (
    DEMO_DEPOTS,
    build_definitions,
    materialize_command,
    shared_spark,
    write_manifest,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "id BIGINT, payload STRING, amount DOUBLE"


def manifest(name: str, streaming: dict | None = None, sql: str | None = None, **stream_input: object) -> str:
    item = {
        "name": "events",
        "dataset": f"dataos://landing:{name}/events",
        "format": "json",
        "isStream": True,
        "schemaString": SCHEMA,
        **stream_input,
    }
    job = {
        "streaming": streaming or {"triggerMode": "AvailableNow"},
        "inputs": [item],
        "steps": [{"sequence": [{"name": "clean", "sql": sql or "SELECT id, payload, amount FROM events"}]}],
        "outputs": [
            {
                "name": "clean",
                "dataset": f"dataos://lakehouse:{name}/clean",
                "options": {"saveMode": "append"},
            }
        ],
    }
    doc = {
        "version": "v1",
        "name": name,
        "type": "workflow",
        "workflow": {"dag": [{"name": "ingest", "spec": {"stackSpec": {"job": job}}}]},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def land(folder: Path, name: str, ids: range, bad: tuple[str, ...] = ()) -> Path:
    """One JSON-lines file, written under a hidden name and renamed, as a landing process would."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": i, "payload": f"p{i}", "amount": i * 1.5}) for i in ids] + list(bad)
    hidden = folder / f".{name}"
    hidden.write_text("\n".join(lines) + "\n")
    os.replace(hidden, folder / name)
    return folder / name


def checksum(rows: list[tuple]) -> str:
    return hashlib.sha256("\n".join(map(repr, sorted(rows))).encode()).hexdigest()


def expected(ids: range) -> list[tuple]:
    return [(i, f"p{i}", i * 1.5) for i in ids]


def table_rows(settings: Settings, table: str) -> list[tuple]:
    rows = load_catalog(settings=settings).load_table(table).scan().to_arrow().to_pylist()
    return [(r["id"], r["payload"], r["amount"]) for r in rows]


def setup_job(settings: Settings, tmp_path: Path, name: str, **kwargs: object):  # noqa: ANN201
    write_manifest(tmp_path / name, name, manifest(name, **kwargs))
    defs = build_definitions(settings, [tmp_path / name])
    return (
        defs,
        settings.resolve("landing") / name / "events",
        settings.resolve("checkpoints") / f"{name}__ingest",
    )


def run_stream(defs, name: str, instance: DagsterInstance | None = None, max_batches: int = 0, **kw):  # noqa: ANN001, ANN201
    config = {"ops": {f"{name}__ingest": {"config": {"max_batches": max_batches}}}}
    return materialize(
        list(defs.assets or []),
        resources={"spark": shared_spark()},
        selection=f"lakehouse/{name}/clean",
        instance=instance,
        run_config=config,
        **kw,
    )


# --- load-time errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected_error"),
    [
        ({"schemaString": None}, "inputs[0]: a file stream needs a schema; give schemaString or schemaPath"),
        (
            {"streaming": {"triggerMode": "Continuous"}},
            "streaming: triggerMode Continuous: Spark's continuous processing writes only to Kafka",
        ),
        (
            {"streaming": {"triggerMode": "ProcessingTime"}},
            "streaming: triggerMode ProcessingTime needs triggerDuration",
        ),
        (
            {"streaming": {"triggerMode": "ProcessingTime", "triggerDuration": "soon"}},
            "streaming.triggerDuration: 'soon' is not a duration",
        ),
        (
            {"streaming": {"outputMode": "upsert"}},
            "streaming.outputMode: got 'upsert'; allowed: append, complete, update",
        ),
        ({"streaming": {"checkpoint": "x"}}, "streaming.checkpoint: unknown key; allowed: triggerMode"),
        ({"format": "text"}, "inputs[0].format: 'text' cannot be streamed; allowed: json, csv, parquet, orc"),
        ({"options": {"maxFileAge": "a week"}}, "inputs[0].options.maxFileAge: 'a week' is not a duration"),
    ],
)
def test_stream_manifest_errors_at_load_time(tmp_path: Path, change: dict, expected_error: str) -> None:
    streaming = change.pop("streaming", None)
    doc = yaml.safe_load(manifest("bad", streaming=streaming, **change))
    item = doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]["inputs"][0]
    for key in [k for k, v in item.items() if v is None]:
        del item[key]
    path = write_manifest(tmp_path, "bad", yaml.safe_dump(doc))
    with pytest.raises(ManifestError) as info:
        load_jobs([tmp_path], load_depots(DEMO_DEPOTS), table_exists=lambda table: False)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: workflow.dag[0].spec.stackSpec.job.")
    assert expected_error in problem


def test_missing_schema_fails_a_strict_code_location(settings: Settings, tmp_path: Path) -> None:
    doc = yaml.safe_load(manifest("noschema"))
    del doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]["inputs"][0]["schemaString"]
    write_manifest(tmp_path, "noschema", yaml.safe_dump(doc))
    with pytest.raises(ManifestError) as info:
        build_definitions(dataclasses.replace(settings, strict=True), [tmp_path])
    assert "inputs[0]: a file stream needs a schema" in str(info.value)
    assert "target: the target table lakehouse.noschema.clean, which does not exist yet" in str(info.value)


# --- sensor mode --------------------------------------------------------------------------------


def tick(sensor, instance: DagsterInstance) -> RunRequest | SkipReason:  # noqa: ANN001
    result = sensor(build_sensor_context(instance=instance))
    return result


def test_sensor_runs_each_batch_once_and_quarantines_malformed_records(
    settings: Settings, tmp_path: Path
) -> None:
    defs, folder, checkpoint = setup_job(settings, tmp_path, "sensed")
    sensor = defs.get_sensor_def("sensed__ingest_stream")
    with DagsterInstance.ephemeral() as instance:
        assert tick(sensor, instance).skip_message == "no new data since the last committed batch"
        land(
            folder,
            "a.json",
            range(1, 21),
            bad=("not json at all", '{"id": "x1", "payload": "p", "amount": 1}'),
        )
        first, again = tick(sensor, instance), tick(sensor, instance)
        assert isinstance(first, RunRequest) and first.run_key == again.run_key  # one batch, one run key
        assert (
            first.run_key.startswith("sensed__ingest:files:1:") and first.tags[STREAM_TAG] == "sensed__ingest"
        )
        assert first.tags[JVM_TAG] == QUICK_JVM  # a small batch: its run's JVM starts quick

        # while that batch's run is in flight, no tick launches another, even with more data landed
        in_flight = DagsterRun(
            job_name="__ASSET_JOB",
            run_id=str(uuid.uuid4()),
            tags={**first.tags, "dagster/run_key": first.run_key},
            status=DagsterRunStatus.STARTED,
        )
        instance.add_run(in_flight)
        land(folder, "b.json", range(21, 31))
        waiting = tick(sensor, instance)
        assert (
            isinstance(waiting, SkipReason)
            and f"run {in_flight.run_id} is processing" in waiting.skip_message
        )
        instance.delete_run(in_flight.run_id)

        result = run_stream(defs, "sensed", instance, tags={**first.tags, "dagster/run_key": first.run_key})
        assert result.success
        (event,) = result.get_asset_materialization_events()
        meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
        assert meta["files_read"] == 2 and meta["rows_read"] == 32
        assert meta["rows_written"] == 30 and meta["rows_quarantined"] == 2
        assert meta["source_offsets"] == {"start": None, "end": {"logOffset": 0}}
        assert meta["quarantine_table"] == "lakehouse.sensed.clean_quarantine"
        assert meta["latency_s"] > 0

        # the committed batch is never requested again; the next file is a new batch
        assert tick(sensor, instance).skip_message == "no new data since the last committed batch"
        land(folder, "c.json", range(31, 36))
        nxt = tick(sensor, instance)
        assert isinstance(nxt, RunRequest) and nxt.run_key != first.run_key
        assert nxt.tags["flare/batch"] == "1 new file(s): c.json"
        assert run_stream(defs, "sensed", instance).success

    assert sorted(table_rows(settings, "sensed.clean")) == expected(range(1, 36))
    quarantined = load_catalog(settings=settings).load_table("sensed.clean_quarantine").scan().to_arrow()
    assert sorted(zip(quarantined["record"].to_pylist(), quarantined["reason"].to_pylist(), strict=True)) == [
        ("not json at all", "not a JSON object"),
        ('{"id": "x1", "payload": "p", "amount": 1}', "id: x1 is not bigint"),
    ]
    assert quarantined["batch_id"].to_pylist() == [0, 0]
    assert set(quarantined["source_file"].to_pylist()) == {
        (folder / "a.json").as_uri().replace("file:///", "file:/")
    }


@pytest.mark.parametrize(
    ("sql", "written"),
    [
        ("SELECT id, payload, amount FROM events", 10),  # the write reads the batch: counted as it reads
        ("SELECT id, payload, amount FROM events ORDER BY id LIMIT 4", 4),  # reads part of it: counted apart
        (  # reads it twice
            "SELECT e.id, e.payload, e.amount FROM events e JOIN (SELECT max(id) AS top FROM events) m "
            "ON e.id <= m.top",
            10,
        ),
    ],
)
def test_batch_counts_and_quarantine_whatever_the_steps_read(
    settings: Settings, tmp_path: Path, sql: str, written: int
) -> None:
    name = f"counted{hashlib.sha1(sql.encode()).hexdigest()[:6]}"
    defs, folder, _ = setup_job(settings, tmp_path, name, sql=sql)
    land(folder, "a.json", range(1, 11), bad=("{broken",))
    result = run_stream(defs, name)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    assert (meta["files_read"], meta["rows_read"], meta["rows_quarantined"]) == (1, 11, 1)
    assert meta["rows_written"] == written
    quarantined = load_catalog(settings=settings).load_table(f"{name}.clean_quarantine").scan().to_arrow()
    assert quarantined["record"].to_pylist() == ["{broken"]


ROW_BY_ROW = "SELECT id, payload, amount, id % 2 AS half FROM events"
GROUPED = ROW_BY_ROW + " GROUP BY id, payload, amount"
SEMI_JOINED = ROW_BY_ROW + " WHERE id IN (SELECT id FROM events WHERE amount >= 0)"


@dataclasses.dataclass(frozen=True)
class SmallBatch:
    name: str
    sql: str
    properties: dict[str, str]  # the output table's
    files: int  # the data files the batch writes


SMALL_BATCHES = [
    SmallBatch("unshuffled", ROW_BY_ROW, {}, 4),
    SmallBatch("hashed", ROW_BY_ROW, {"write.distribution-mode": "hash"}, 2),
    SmallBatch("grouped", GROUPED, {}, 2),
    SmallBatch("semijoined", SEMI_JOINED, {}, 2),
]


@pytest.mark.parametrize("batch", SMALL_BATCHES, ids=lambda b: b.name)
def test_small_micro_batch_is_written_by_the_tasks_that_read_it(
    settings: Settings, tmp_path: Path, batch: SmallBatch
) -> None:
    """Two files, each read by its own task and holding rows of both partitions: without a shuffle
    each task writes a file per partition. A table's own distribution mode still wins, and steps
    that aggregate or join (a subquery becomes a join) keep the distribution by partition."""
    name = batch.name
    doc = yaml.safe_load(manifest(name, sql=batch.sql))
    output = doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]["outputs"][0]
    spec = [{"type": "identity", "column": "half"}]
    output["options"]["iceberg"] = {"partitionSpec": spec, "properties": batch.properties}
    write_manifest(tmp_path / name, name, yaml.safe_dump(doc, sort_keys=False))
    folder = settings.resolve("landing") / name / "events"
    land(folder, "a.json", range(1, 11))
    land(folder, "b.json", range(11, 21))
    assert run_stream(build_definitions(settings, [tmp_path / name]), name).success
    assert sorted(table_rows(settings, f"{name}.clean")) == expected(range(1, 21))
    assert len(load_catalog(settings=settings).load_table(f"{name}.clean").inspect.files()) == batch.files


# --- every landed file is read, or said not to be -----------------------------------------------


def test_file_landed_with_an_old_modification_time_is_read(settings: Settings, tmp_path: Path) -> None:
    """`cp -p`, `rsync -t` and `tar` keep a file's old mtime: Spark's file source would skip it
    (maxFileAge, 7 days before the newest file read) and the run would succeed with 0 rows."""
    defs, folder, checkpoint = setup_job(settings, tmp_path, "aged")
    sensor = defs.get_sensor_def("aged__ingest_stream")
    land(folder, "a.json", range(1, 11))
    assert run_stream(defs, "aged").success
    old = land(folder, "b.json", range(11, 21))
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    with DagsterInstance.ephemeral() as instance:
        assert isinstance(tick(sensor, instance), RunRequest)
        assert run_stream(defs, "aged").success
        assert tick(sensor, instance).skip_message == "no new data since the last committed batch"
    assert sorted(table_rows(settings, "aged.clean")) == expected(range(1, 21))

    # a manifest that sets maxFileAge gets Spark's rule, and the files it excludes are named
    land(folder, "c.json", range(21, 31))
    os.utime(folder / "c.json", (ten_days_ago, ten_days_ago))
    found = landing(folder, checkpoint, {"maxfileage": "7d"})
    assert found.pending == [] and "maxFileAge (7d)" in found.unread[str(folder / "c.json")]


def test_files_in_subfolders_are_read(settings: Settings, tmp_path: Path) -> None:
    defs, folder, checkpoint = setup_job(settings, tmp_path, "nested")
    sensor = defs.get_sensor_def("nested__ingest_stream")
    land(folder, "a.json", range(1, 11))
    land(folder / "2026" / "11", "b.json", range(11, 21))
    with DagsterInstance.ephemeral() as instance:
        request = tick(sensor, instance)
        assert isinstance(request, RunRequest) and request.run_key.startswith("nested__ingest:files:2:")
        assert run_stream(defs, "nested").success
        assert tick(sensor, instance).skip_message == "no new data since the last committed batch"
    assert sorted(table_rows(settings, "nested.clean")) == expected(range(1, 21))

    # with recursiveFileLookup: false Spark reads key=value partition folders only: others are named
    land(folder / "late", "c.json", range(21, 31))
    found = landing(folder, checkpoint, {"recursivefilelookup": "false"})
    assert found.pending == [] and "subfolder late" in found.unread[str(folder / "late" / "c.json")]


def test_file_landed_again_under_a_name_already_read_is_reported(settings: Settings, tmp_path: Path) -> None:
    defs, folder, checkpoint = setup_job(settings, tmp_path, "relanded")
    sensor = defs.get_sensor_def("relanded__ingest_stream")
    land(folder, "a.json", range(1, 11))
    assert run_stream(defs, "relanded").success
    again = land(folder, "a.json", range(11, 21))
    later = time.time() + 5
    os.utime(again, (later, later))
    with DagsterInstance.ephemeral() as instance:
        said = tick(sensor, instance).skip_message
        assert f"{again}: landed again under a name the stream has already read" in said, said
        land(folder, "b.json", range(21, 31))
        result = run_stream(defs, "relanded", instance)
        assert result.success
        log = run_log(instance, result.run_id)
    assert any(line.startswith(f"not read: {again}: landed again") for line in log), log
    assert (
        "landed again"
        in result.get_asset_materialization_events()[0].materialization.metadata["run_notes"].value
    )
    assert sorted(table_rows(settings, "relanded.clean")) == expected([*range(1, 11), *range(21, 31)])


def test_file_log_ahead_of_the_batches_is_counted_by_the_sensor_and_the_batch(
    settings: Settings, tmp_path: Path
) -> None:
    """A run killed after Spark listed new files (file-log entry 1) and before batch 1 started
    leaves the file log one entry ahead of the batches; the next batch reads entries 1 and 2."""
    direct = {"triggerMode": "AvailableNow", "forEachBatchMode": False}
    defs, folder, checkpoint = setup_job(settings, tmp_path, "ahead", streaming=direct)
    sensor = defs.get_sensor_def("ahead__ingest_stream")
    land(folder, "a.json", range(1, 11))
    assert run_stream(defs, "ahead").success
    listed = land(folder, "b.json", range(11, 21))
    log = checkpoint / "sources" / "0"
    version = (log / "0").read_text().splitlines()[0]
    entry = {"path": listed.as_uri(), "timestamp": listed.stat().st_mtime_ns // 1_000_000, "batchId": 1}
    (log / "1").write_text(f"{version}\n{json.dumps(entry)}")
    land(folder, "c.json", range(21, 31))
    with DagsterInstance.ephemeral() as instance:
        request = tick(sensor, instance)
        assert (
            isinstance(request, RunRequest) and request.tags["flare/batch"] == "2 new file(s): b.json, c.json"
        )
        result = run_stream(defs, "ahead", instance)
        assert result.success
        (event,) = result.get_asset_materialization_events()
        meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
        assert (meta["files_read"], meta["rows_read"], meta["batch_ids"]) == (2, 20, "1")
        assert tick(sensor, instance).skip_message == "no new data since the last committed batch"
    assert sorted(table_rows(settings, "ahead.clean")) == expected(range(1, 31))


# --- exactly-once -------------------------------------------------------------------------------


def test_batch_committed_to_the_table_but_not_the_checkpoint_is_not_written_twice(
    settings: Settings, tmp_path: Path
) -> None:
    """A crash after the Iceberg commit and before the checkpoint's leaves exactly this on disk."""
    defs, folder, checkpoint = setup_job(settings, tmp_path, "replayed")
    land(folder, "a.json", range(1, 11))
    assert run_stream(defs, "replayed").success
    snapshots = len(load_catalog(settings=settings).load_table("replayed.clean").snapshots())
    for name in ("0", ".0.crc"):  # the commit and its checksum, written together
        (checkpoint / "commits" / name).unlink()
    result = run_stream(defs, "replayed")
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["rows_written"].value == 0
    assert "| 0 | 1 | 10 | 0 | 0 |" in event.materialization.metadata["batches"].value
    assert (checkpoint / "commits" / "0").exists()
    assert len(load_catalog(settings=settings).load_table("replayed.clean").snapshots()) == snapshots
    assert sorted(table_rows(settings, "replayed.clean")) == expected(range(1, 11))


def test_direct_iceberg_sink_commits_each_epoch_once_and_quarantines(
    settings: Settings, tmp_path: Path
) -> None:
    direct = {"triggerMode": "AvailableNow", "forEachBatchMode": False}
    defs, folder, checkpoint = setup_job(settings, tmp_path, "direct", streaming=direct)
    land(folder, "a.json", range(1, 11), bad=("{broken",))
    result = run_stream(defs, "direct")
    assert result.success
    (event,) = result.get_asset_materialization_events()
    meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    assert (meta["files_read"], meta["rows_read"]) == (1, 11)
    assert (meta["rows_written"], meta["rows_quarantined"]) == (10, 1)
    assert meta["files"] == f"- `{folder / 'a.json'}`"
    snapshots = len(load_catalog(settings=settings).load_table("direct.clean").snapshots())
    for name in ("0", ".0.crc"):  # a crash after the sink's commit, before the checkpoint's
        (checkpoint / "commits" / name).unlink()
    assert run_stream(defs, "direct").success
    assert len(load_catalog(settings=settings).load_table("direct.clean").snapshots()) == snapshots
    assert sorted(table_rows(settings, "direct.clean")) == expected(range(1, 11))
    quarantined = load_catalog(settings=settings).load_table("direct.clean_quarantine").scan().to_arrow()
    assert quarantined["record"].to_pylist() == ["{broken"]
    assert quarantined["reason"].to_pylist() == ["not a JSON object"]
    assert quarantined["batch_id"].to_pylist() == [0]


SLOW_SQL = (
    "SELECT id, payload, amount FROM events "
    "WHERE length(coalesce(reflect('java.lang.Thread', 'sleep', CAST(150 AS BIGINT)), '')) >= 0"
)


@pytest.mark.slow
def test_run_killed_mid_batch_then_rerun_gives_every_row_once(settings: Settings, tmp_path: Path) -> None:
    defs, folder, checkpoint = setup_job(settings, tmp_path, "killed", sql=SLOW_SQL)
    land(folder, "a.json", range(1, 31))  # 30 rows x 150 ms: a batch of about 4.5 s
    env = {
        **os.environ,
        "FLARE_PIPELINES": str(tmp_path / "killed"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "FLARE_SPARK_MASTER": "local[1]",
    }
    (tmp_path / "dagster").mkdir()
    proc = subprocess.Popen(
        materialize_command("lakehouse/killed/clean"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while not (checkpoint / "offsets" / "0").exists():  # the batch has started
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "the stream never started"
        time.sleep(0.1)
    time.sleep(1.0)
    assert not (checkpoint / "commits" / "0").exists(), "the batch finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the run's Python process and its JVM, mid-batch
    proc.wait(timeout=30)
    assert not (checkpoint / "commits" / "0").exists()

    land(folder, "b.json", range(31, 41))
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        (dead,) = instance.get_runs()
        assert dead.status == DagsterRunStatus.STARTED  # nothing ended it
        # the sensor sees its process is gone: it fails the run and launches the next one
        request = tick(defs.get_sensor_def("killed__ingest_stream"), instance)
        assert isinstance(request, RunRequest), request.skip_message
        assert request.run_key.endswith(f":resumed:{dead.run_id[:8]}")
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        tags = {**request.tags, "dagster/run_key": request.run_key}
        assert run_stream(defs, "killed", instance, tags=tags).success
    rows = table_rows(settings, "killed.clean")
    assert len(rows) == len(set(rows)) == 40
    assert checksum(rows) == checksum(expected(range(1, 41)))


# --- merge streams: committed means reachable from the target branch's head -------------------

MERGE_SQL = "SELECT id, first(payload) AS payload, sum(amount) AS amount FROM events GROUP BY id"
ADD_AMOUNTS = {
    "onClause": "old.id = new.id",
    "whenClause": "WHEN MATCHED THEN UPDATE SET amount = old.amount + new.amount WHEN NOT MATCHED THEN INSERT *",
}
KEYS = range(1, 11)


def setup_merge_job(settings: Settings, tmp_path: Path, name: str):  # noqa: ANN201
    doc = yaml.safe_load(manifest(name, sql=MERGE_SQL))
    output = doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]["outputs"][0]
    output["options"] = {"saveMode": "append", "iceberg": {"merge": ADD_AMOUNTS}}
    write_manifest(tmp_path / name, name, yaml.safe_dump(doc, sort_keys=False))
    defs = build_definitions(settings, [tmp_path / name])
    return defs, settings.resolve("landing") / name / "events"


def land_amounts(folder: Path, name: str, amount: float) -> None:
    """Every key once, with `amount`: each batch adds it to every key's total."""
    folder.mkdir(parents=True, exist_ok=True)
    hidden = folder / f".{name}"
    hidden.write_text(
        "".join(json.dumps({"id": i, "payload": f"p{i}", "amount": amount}) + "\n" for i in KEYS)
    )
    os.replace(hidden, folder / name)


def totals(settings: Settings, table: str) -> dict[int, float]:
    rows = load_catalog(settings=settings).load_table(table).scan().to_arrow().to_pylist()
    assert len(rows) == len({r["id"] for r in rows}), "a key is in the table twice"
    return {r["id"]: r["amount"] for r in rows}


def stage_branches(settings: Settings, table: str) -> list[str]:
    return [
        r for r in load_catalog(settings=settings).load_table(table).refs() if r.startswith("flare_stage_")
    ]


def staged_batches(settings: Settings, table: str) -> list[str]:
    """The stream batches whose commits sit at the head of a stage branch."""
    ice = load_catalog(settings=settings).load_table(table)
    heads = [
        ice.snapshot_by_id(ref.snapshot_id)
        for name, ref in ice.refs().items()
        if name.startswith("flare_stage_")
    ]
    return [
        s.summary["flare.stream-batch"]
        for s in heads
        if s and "flare.stream-batch" in s.summary.additional_properties
    ]


def run_log(instance: DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.user_message]


def test_merge_batch_whose_publish_failed_runs_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge of batch 1 is committed on its stage branch and the publish fails (as 8 failed
    fast-forwards end): the stage is dropped, and the batch's marker, left in an unreferenced
    snapshot, must not make the next run skip the batch."""
    defs, folder = setup_merge_job(settings, tmp_path, "unpublished")
    land_amounts(folder, "a.json", 90.0)
    assert run_stream(defs, "unpublished").success
    land_amounts(folder, "b.json", 10.0)
    monkeypatch.setenv("FLARE_FAULT", "stage-committed:raise")
    assert not run_stream(defs, "unpublished", raise_on_error=False).success
    monkeypatch.delenv("FLARE_FAULT")
    assert totals(settings, "unpublished.clean") == dict.fromkeys(KEYS, 90.0)
    assert stage_branches(settings, "unpublished.clean") == []

    assert run_stream(defs, "unpublished").success
    assert totals(settings, "unpublished.clean") == dict.fromkeys(KEYS, 100.0)


def test_merge_stream_metadata_counts_the_merge_commit(settings: Settings, tmp_path: Path) -> None:
    """A merge batch's commit is the MERGE then an empty append carrying the batch's markers: the
    counts come from the MERGE's own snapshot, not the marker's."""
    defs, folder = setup_merge_job(settings, tmp_path, "merged")
    counts = []
    for name, amount in (("a.json", 90.0), ("b.json", 10.0)):
        land_amounts(folder, name, amount)
        result = run_stream(defs, "merged")
        assert result.success
        (event,) = result.get_asset_materialization_events()
        meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
        counts.append((meta["rows_written"], meta["added_records"], meta["deleted_records"]))
    # the first batch inserts 10 keys; the second updates them (copy-on-write: 10 rows out, 10 in)
    assert counts == [(10, 10, 0), (10, 10, 10)]
    assert totals(settings, "merged.clean") == dict.fromkeys(KEYS, 100.0)


def _run_until_stage_committed(tmp_path: Path, name: str, settings: Settings) -> None:
    """Runs the stream in a subprocess that stops between the stage commit and the publish, and
    kills it there (its process group: the Python process and its JVM)."""
    (tmp_path / "dagster").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "FLARE_PIPELINES": str(tmp_path / name),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "FLARE_SPARK_MASTER": "local[1]",
        "FLARE_FAULT": "stage-committed:hang",
    }
    proc = subprocess.Popen(
        materialize_command(f"lakehouse/{name}/clean"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while staged_batches(settings, f"{name}.clean") != ["1"]:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the batch never reached its stage branch"
            time.sleep(0.2)
    finally:  # the run waits at the fault point until killed: never leave it behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("moved", [False, True], ids=["published", "dropped"])
def test_merge_stream_killed_between_stage_commit_and_publish_loses_no_batch(
    settings: Settings, tmp_path: Path, moved: bool
) -> None:
    name = "dropped" if moved else "published"
    defs, folder = setup_merge_job(settings, tmp_path, name)
    land_amounts(folder, "a.json", 90.0)
    assert run_stream(defs, name).success
    land_amounts(folder, "b.json", 10.0)
    _run_until_stage_committed(tmp_path, name, settings)
    (stage,) = stage_branches(settings, f"{name}.clean")
    assert totals(settings, f"{name}.clean") == dict.fromkeys(KEYS, 90.0)  # batch 1 is not on main
    want = dict.fromkeys(KEYS, 100.0)
    if moved:  # main moves on: the stage is no longer the next batch on top of it
        sparklib.get_session(settings).sql(f"INSERT INTO lakehouse.{name}.clean VALUES (999, 'other', 1.0)")
        want[999] = 1.0

    with DagsterInstance.ephemeral() as instance:
        result = run_stream(defs, name, instance)
        assert result.success
        log = run_log(instance, result.run_id)
    assert totals(settings, f"{name}.clean") == want
    assert stage_branches(settings, f"{name}.clean") == []
    said = [line for line in log if stage in line]
    if moved:
        assert len(said) == 1 and "dropped stage branch" in said[0] and "runs again" in said[0], log
    else:
        assert len(said) == 1 and "so it was published" in said[0], log


# --- continuous mode ----------------------------------------------------------------------------

CONTINUOUS = {"triggerMode": "ProcessingTime", "triggerDuration": "1 second"}


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_continuous_run_reports_each_micro_batch_and_stops_between_batches(
    settings: Settings, tmp_path: Path
) -> None:
    defs, folder, checkpoint = setup_job(settings, tmp_path, "live", streaming=CONTINUOUS)
    land(folder, "a.json", range(1, 11))

    def land_second() -> None:
        _wait_for(checkpoint / "commits" / "0")
        land(folder, "b.json", range(11, 16))

    lander = threading.Thread(target=land_second, daemon=True)
    lander.start()
    result = run_stream(defs, "live", max_batches=2)
    lander.join(timeout=5)
    assert result.success
    events = result.get_asset_materialization_events()
    assert [e.materialization.metadata["rows_written"].value for e in events] == [10, 5]
    assert [e.materialization.metadata["batch_ids"].value for e in events] == ["0", "1"]
    assert all(e.materialization.metadata["latency_s"].value >= 0 for e in events)
    assert sorted(p.name for p in (checkpoint / "commits").iterdir() if p.name.isdigit()) == ["0", "1"]
    assert not (checkpoint / "offsets" / "2").exists()  # stopped between batches, nothing half done
    assert sorted(table_rows(settings, "live.clean")) == expected(range(1, 16))


@pytest.mark.slow
def test_terminated_continuous_run_stops_cleanly_and_resumes_from_its_checkpoint(
    settings: Settings, tmp_path: Path
) -> None:
    defs, folder, checkpoint = setup_job(settings, tmp_path, "ended", streaming=CONTINUOUS)
    (tmp_path / "dagster").mkdir()
    env = {
        **os.environ,
        "FLARE_PIPELINES": str(tmp_path / "ended"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "FLARE_SPARK_MASTER": "local[1]",
    }
    land(folder, "a.json", range(1, 11))
    proc = subprocess.Popen(
        materialize_command("lakehouse/ended/clean"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(checkpoint / "commits" / "0", timeout=180)
    land(folder, "b.json", range(11, 21))
    _wait_for(checkpoint / "commits" / "1")
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        (run,) = instance.get_runs()
        instance.report_run_canceling(run)  # terminating from the UI: the run is marked canceling,
    proc.send_signal(signal.SIGINT)  # then its process is interrupted
    out, _ = proc.communicate(timeout=90)
    assert "stopped: terminated" in out, out[-3000:]
    offsets = sorted(int(p.name) for p in (checkpoint / "offsets").iterdir() if p.name.isdigit())
    commits = sorted(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    assert offsets == commits == [0, 1]
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        (run,) = instance.get_runs()
        assert run.status == DagsterRunStatus.CANCELED
        materialized = instance.get_records_for_run(run.run_id, of_type=None).records
        batches = [
            r.event_log_entry.dagster_event.event_specific_data.materialization.metadata["batch_ids"].value
            for r in materialized
            if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.is_step_materialization
        ]
        assert batches == ["0", "1"]

    land(folder, "c.json", range(21, 26))
    result = run_stream(defs, "ended", max_batches=1)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["batch_ids"].value == "2"
    assert event.materialization.metadata["rows_written"].value == 5
    assert sorted(table_rows(settings, "ended.clean")) == expected(range(1, 26))
