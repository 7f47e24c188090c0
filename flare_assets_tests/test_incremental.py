"""Incremental runs: Flare's incremental block, Iceberg snapshots appended since the last run, new
files (archived once committed); state committed with the output; run ids; kill before commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dagster import materialize
from pyspark.sql import SparkSession

from flare_assets.catalog import load_catalog
from flare_assets.depots import load_depots
from flare_assets.engine import RunContext, run_job
from flare_assets.engine.batch.results import JobResult
from flare_assets.engine.batch.state import StateRequest, request_problems
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import (
    DEMO_DEPOTS,
    build_definitions,
    failure_message,
    materialize_command,
    shared_spark,
    table_rows,
)
from flare_assets_tests.manifests import job, workflow, write


def job_doc(name: str, inputs: list[dict], sql: str, target: str, save_mode: str = "append") -> dict:
    output = {
        "name": "result",
        "dataset": f"dataos://lakehouse:out/{target}",
        "options": {"saveMode": save_mode},
    }
    return workflow(name, job(inputs, [{"name": "result", "sql": sql}], [output]))


def run(settings: Settings, folder: Path, doc: dict, ok: bool = True, config: dict | None = None):  # noqa: ANN201
    write(folder, doc, "m")
    defs = build_definitions(settings, [folder])
    (assets,) = [a for a in defs.assets or [] if hasattr(a, "node_def")]
    run_config = {"ops": {assets.node_def.name: {"config": config}}} if config else None
    result = materialize(
        list(defs.assets or []),
        resources={"spark": shared_spark()},
        raise_on_error=False,
        run_config=run_config,
    )
    assert result.success is ok, failure_message(result) if ok else "the run should have failed"
    return result


def snapshots(settings: Settings, table: str) -> list[dict[str, str]]:
    tbl = load_catalog(settings=settings).load_table(table)
    return [
        dict(s.summary.additional_properties) | {"op": s.summary.operation.value} for s in tbl.snapshots()
    ]


def events(settings: Settings, values: str, replace: bool = False) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.src")
    if replace:
        spark.sql("CREATE OR REPLACE TABLE lakehouse.src.events (id INT, ts TIMESTAMP) USING iceberg")
    spark.sql(f"INSERT INTO lakehouse.src.events VALUES {values}")


FLARE_BLOCK = {
    "name": "events",
    "dataset": "dataos://lakehouse:src/events",
    "incremental": {
        "context": "events_all",
        "sql": "SELECT * FROM events_all WHERE ts > '$|start|' AND ts <= '$|end|'",
        "keys": [
            {"name": "start", "sql": "SELECT timestamp'1970-01-01 00:00:00'"},
            {"name": "end", "sql": "SELECT max(ts) FROM events_all"},
        ],
        "state": [{"key": "start", "value": "end"}],
    },
}


def test_flare_incremental_block_moves_its_window_with_each_commit(
    settings: Settings, tmp_path: Path
) -> None:
    events(settings, "(1, timestamp'2024-01-01 10:00:00'), (2, timestamp'2024-01-01 11:00:00')", replace=True)
    doc = job_doc("inc-block", [FLARE_BLOCK], "SELECT id, ts FROM events", "inc_block")
    first = run(settings, tmp_path, doc)
    assert [r[0] for r in table_rows(settings, "out.inc_block")] == [1, 2]
    (mat,) = first.get_asset_materialization_events()
    meta = mat.materialization.metadata
    assert meta["flare_run_id"].value == 1
    assert meta["incremental_state"].value == {
        "flare.state.events.start": "2024-01-01 11:00:00",
        "flare.state-zone": "UTC",
    }

    # nothing new: the run writes nothing and says so
    second = run(settings, tmp_path, doc)
    assert not second.get_asset_materialization_events()
    (obs,) = second.get_asset_observation_events()
    assert "no new data since run 1" in obs.asset_observation_data.asset_observation.metadata["skipped"].value
    assert len(snapshots(settings, "out.inc_block")) == 1

    events(settings, "(3, timestamp'2024-01-02 09:00:00')")
    run(settings, tmp_path, doc)
    assert [r[0] for r in table_rows(settings, "out.inc_block")] == [1, 2, 3]
    summaries = snapshots(settings, "out.inc_block")
    assert [s["flare.run-id"] for s in summaries] == ["1", "2"]
    assert summaries[-1]["flare.state.events.start"] == "2024-01-02 09:00:00"

    # a replay from a chosen value into an append output would append ids 2 and 3 again: refused
    refused = run(settings, tmp_path, doc, ok=False, config={"state": {"start": "2024-01-01 10:30:00"}})
    assert "would append again the rows earlier runs wrote" in failure_message(refused)
    assert [r[0] for r in table_rows(settings, "out.inc_block")] == [1, 2, 3]
    # a reset rebuilds the output from scratch, in one commit: the table a first run would give
    run(settings, tmp_path, doc, config={"reset_state": True})
    assert [r[0] for r in table_rows(settings, "out.inc_block")] == [1, 2, 3]
    assert [s["op"] for s in snapshots(settings, "out.inc_block")] == ["append", "append", "overwrite"]


def test_incremental_key_failures_are_named_before_writing(settings: Settings, tmp_path: Path) -> None:
    events(settings, "(1, timestamp'2024-01-01 10:00:00')", replace=True)
    broken = json.loads(json.dumps(FLARE_BLOCK))
    broken["incremental"]["keys"][1]["sql"] = "SELECT max(no_such_column) FROM events_all"
    result = run(
        settings, tmp_path, job_doc("inc-broken", [broken], "SELECT * FROM events", "inc_broken"), ok=False
    )
    assert "incremental key 'end': its SQL failed" in failure_message(result)
    assert not load_catalog(settings=settings).table_exists("out.inc_broken")


@pytest.mark.unit
def test_placeholders_without_keys_are_reported_at_load(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(FLARE_BLOCK))
    bad["incremental"]["sql"] = "SELECT * FROM events_all WHERE ts > '$|begin|'"
    path = write(tmp_path, job_doc("inc-bad", [bad], "SELECT * FROM events WHERE id > $|nope|", "x"), "m")
    with pytest.raises(ManifestError) as err:
        load_jobs([path])
    text = str(err.value)
    assert "inputs[0].incremental: sql uses $|begin|, which is no key; allowed: start, end" in text


def test_iceberg_input_reads_only_appended_snapshots(settings: Settings, tmp_path: Path) -> None:
    events(settings, "(1, timestamp'2024-01-01 10:00:00')", replace=True)
    source = {"name": "events", "dataset": "dataos://lakehouse:src/events", "incrementalRead": {}}
    doc = job_doc("inc-snap", [source], "SELECT id FROM events", "inc_snap")
    run(settings, tmp_path, doc)
    events(settings, "(2, timestamp'2024-01-02 10:00:00')")
    events(settings, "(3, timestamp'2024-01-03 10:00:00')")
    result = run(settings, tmp_path, doc)
    assert table_rows(settings, "out.inc_snap") == [(1,), (2,), (3,)]
    src = load_catalog(settings=settings).load_table("src.events")
    assert snapshots(settings, "out.inc_snap")[-1]["flare.source.events"] == str(
        src.current_snapshot().snapshot_id
    )
    detail = result.get_asset_materialization_events()[0].materialization.metadata["incremental"].value
    assert "snapshots after" in detail

    # an overwrite upstream: the default policy fails clearly, full-refresh reads everything again
    get_session(settings).sql("DELETE FROM lakehouse.src.events WHERE id = 1")
    failed = run(settings, tmp_path, doc, ok=False)
    assert "changed by more than appends" in failed_text(failed) and "onRewrite: full-refresh" in failed_text(
        failed
    )
    assert table_rows(settings, "out.inc_snap") == [(1,), (2,), (3,)]
    refresh = job_doc(
        "inc-snap",
        [{**source, "incrementalRead": {"onRewrite": "full-refresh"}}],
        "SELECT id FROM events",
        "inc_snap",
        "overwrite",
    )
    run(settings, tmp_path, refresh)
    assert table_rows(settings, "out.inc_snap") == [(2,), (3,)]


def failed_text(result) -> str:  # noqa: ANN001
    return failure_message(result)


def landing(settings: Settings, name: str, records: list[dict]) -> None:
    folder = settings.home / "landing" / "inc" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))


FILES = {
    "name": "uploads",
    "dataset": "dataos://landing:inc/uploads",
    "format": "json",
    "schemaString": "id INT, v STRING",
    "incrementalRead": {"archive": "archive/inc/uploads"},
}


def test_file_input_processes_each_file_once_and_archives_it(settings: Settings, tmp_path: Path) -> None:
    landing(settings, "a.json", [{"id": 1, "v": "a"}, {"id": 2, "v": "a"}])
    landing(settings, "b.json", [{"id": 3, "v": "b"}])
    doc = job_doc("inc-files", [FILES], "SELECT id, v FROM uploads", "inc_files")
    first = run(settings, tmp_path, doc)
    assert [r[0] for r in table_rows(settings, "out.inc_files")] == [1, 2, 3]
    assert sorted(p.name for p in (settings.home / "archive" / "inc" / "uploads").iterdir()) == [
        "a.json",
        "b.json",
    ]
    assert first.get_asset_materialization_events()[0].materialization.metadata["files_archived"].value == 2
    assert not run(settings, tmp_path, doc).get_asset_materialization_events()  # nothing new
    landing(settings, "c.json", [{"id": 4, "v": "c"}])
    run(settings, tmp_path, doc)
    assert [r[0] for r in table_rows(settings, "out.inc_files")] == [1, 2, 3, 4]
    assert [s["flare.run-id"] for s in snapshots(settings, "out.inc_files")] == ["1", "2"]


def test_run_killed_before_commit_moves_no_state(settings: Settings, tmp_path: Path) -> None:
    """SIGKILL once the run has listed its files (the ledger is written just before the commit): the
    output, its state and the landing folder are as before, and the rerun processes the file once."""
    landing(settings, "k1.json", [{"id": 1, "v": "k"}])
    pause = "reflect('java.lang.Thread', 'sleep', cast(id * 0 + 120000 as bigint))"
    # length() keeps the optimizer from folding the filter (and the sleep in it) away
    slow = f"SELECT id, v FROM uploads WHERE length(coalesce({pause}, 'slept')) > 0"
    fast = "SELECT id, v FROM uploads"
    kill_files = {**FILES, "incrementalRead": {"archive": "archive/kill"}}
    doc = job_doc("inc-kill", [kill_files], fast, "inc_kill")
    run(settings, tmp_path / "first", doc)
    landing(settings, "k2.json", [{"id": 2, "v": "k"}])
    before = snapshots(settings, "out.inc_kill")

    folder = tmp_path / "slow"
    write(folder, job_doc("inc-kill", [kill_files], slow, "inc_kill"), "m")
    env = {
        **os.environ,
        "FLARE_PIPELINES": str(folder),
        "FLARE_DEPOTS": str(DEMO_DEPOTS),
        "DAGSTER_HOME": str(tmp_path),
    }
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen(
        materialize_command("*"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ledger = settings.home / "state" / "inc-kill_load" / "uploads.files.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        lines = ledger.read_text().splitlines() if ledger.exists() else []
        if len(lines) == 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert snapshots(settings, "out.inc_kill") == before  # no commit, so no state moved
    assert (settings.home / "landing" / "inc" / "uploads" / "k2.json").exists()
    run(settings, tmp_path / "first", doc)
    assert [r[0] for r in table_rows(settings, "out.inc_kill")] == [1, 2]
    assert [s["flare.run-id"] for s in snapshots(settings, "out.inc_kill")] == ["1", "2"]
    assert not (settings.home / "landing" / "inc" / "uploads" / "k2.json").exists()


def engine_run(
    settings: Settings,
    folder: Path,
    doc: dict,
    request: StateRequest | None = None,
    session: SparkSession | None = None,
) -> JobResult:
    """The job run by the engine alone, as a Dagster run does it (no Dagster: faster)."""
    write(folder, doc, "m")
    depots = load_depots(settings.depots)
    (lj,) = load_jobs([folder], depots)
    session = session or get_session(settings)
    ctx = RunContext(session, lj.dag_job.job, depots, settings, lj.name, request=request or StateRequest())
    return run_job(ctx)


def test_watermarks_do_not_depend_on_the_process_time_zone(settings: Settings, tmp_path: Path) -> None:
    """Keys are rendered and compared in the session's zone (UTC): the same runs under three TZ
    values give the same table, each source row exactly once, and the same committed state."""
    batches = [
        [(1, "2024-01-01 10:00:00"), (2, "2024-01-01 11:00:00"), (3, "2024-01-01 20:00:00")],
        [(4, "2024-01-02 00:30:00"), (5, "2024-01-02 03:00:00")],  # within a few hours of the last
        [],  # nothing new
        [(6, "2024-01-02 04:00:00")],
    ]
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.src")
    outcome = {}
    saved = os.environ.get("TZ")
    try:
        for n, zone in enumerate(["America/New_York", "Europe/Berlin", "UTC"]):
            os.environ["TZ"] = zone
            time.tzset()
            source, target = f"tz_events_{n}", f"tz_out_{n}"
            spark.sql(f"CREATE OR REPLACE TABLE lakehouse.src.{source} (id INT, ts TIMESTAMP) USING iceberg")
            block = json.loads(json.dumps(FLARE_BLOCK).replace("src/events", f"src/{source}"))
            doc = job_doc(f"tz-{n}", [block], "SELECT id, ts FROM events", target)
            for batch in batches:
                if batch:
                    values = ", ".join(f"({i}, timestamp'{ts}')" for i, ts in batch)
                    spark.sql(f"INSERT INTO lakehouse.src.{source} VALUES {values}")
                engine_run(settings, tmp_path / zone.replace("/", "_"), doc)
            rows = [r[0] for r in table_rows(settings, f"out.{target}")]
            state = snapshots(settings, f"out.{target}")[-1]
            outcome[zone] = (rows, state["flare.state.events.start"], state.get("flare.state-zone"))
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
    expected = sorted(i for batch in batches for i, _ in batch)  # every source row, once
    assert {z: rows for z, (rows, _, _) in outcome.items()} == dict.fromkeys(outcome, expected)
    assert list(outcome.values()) == [(expected, "2024-01-02 04:00:00", "UTC")] * 3

    # a session in another zone reads the committed watermark in the zone it was written in
    new_york = get_session(settings)
    new_york.conf.set("spark.sql.session.timeZone", "America/New_York")
    new_york.sql("INSERT INTO lakehouse.src.tz_events_2 VALUES (7, timestamp'2024-01-02 00:00:00')")  # 05:00Z
    block = json.loads(json.dumps(FLARE_BLOCK).replace("src/events", "src/tz_events_2"))
    doc = job_doc("tz-2", [block], "SELECT id, ts FROM events", "tz_out_2")
    engine_run(settings, tmp_path / "ny_session", doc, session=new_york)
    assert [r[0] for r in table_rows(settings, "out.tz_out_2")] == [*expected, 7]
    state = snapshots(settings, "out.tz_out_2")[-1]
    assert (state["flare.state.events.start"], state["flare.state-zone"]) == (
        "2024-01-02 00:00:00",
        "America/New_York",
    )


def test_full_refresh_replaces_an_append_output_in_one_commit(settings: Settings, tmp_path: Path) -> None:
    events(settings, "(1, timestamp'2024-01-01 10:00:00'), (2, timestamp'2024-01-01 11:00:00')", replace=True)
    source = {
        "name": "events",
        "dataset": "dataos://lakehouse:src/events",
        "incrementalRead": {"onRewrite": "full-refresh"},
    }
    doc = job_doc("inc-refresh", [source], "SELECT id FROM events", "inc_refresh")
    engine_run(settings, tmp_path, doc)
    spark = get_session(settings)

    def upstream() -> list[tuple]:
        return table_rows(settings, "src.events") and sorted(
            (r[0],) for r in table_rows(settings, "src.events")
        )

    # an upstream overwrite, then a delete plus an append: the output is the upstream, never more
    spark.sql("INSERT OVERWRITE lakehouse.src.events VALUES (3, timestamp'2024-01-02 10:00:00')")
    result = engine_run(settings, tmp_path, doc)
    assert table_rows(settings, "out.inc_refresh") == upstream() == [(3,)]
    (written,) = result.outputs
    assert written.save_mode == "overwrite"
    events(settings, "(4, timestamp'2024-01-03 10:00:00'), (5, timestamp'2024-01-03 11:00:00')")
    spark.sql("DELETE FROM lakehouse.src.events WHERE id = 4")
    events(settings, "(6, timestamp'2024-01-04 10:00:00')")
    engine_run(settings, tmp_path, doc)
    assert table_rows(settings, "out.inc_refresh") == upstream() == [(3,), (5,), (6,)]
    # plain appends upstream: appended, not replaced
    events(settings, "(7, timestamp'2024-01-05 10:00:00')")
    engine_run(settings, tmp_path, doc)
    assert table_rows(settings, "out.inc_refresh") == upstream() == [(3,), (5,), (6,), (7,)]
    # each run one commit, carrying the upstream snapshot it read
    summaries = snapshots(settings, "out.inc_refresh")
    assert [s["op"] for s in summaries] == ["append", "overwrite", "overwrite", "append"]
    head = load_catalog(settings=settings).load_table("src.events").current_snapshot().snapshot_id
    assert summaries[-1]["flare.source.events"] == str(head)


@pytest.mark.unit
def test_full_refresh_beside_another_incremental_input_is_refused(tmp_path: Path) -> None:
    inputs = [
        {
            "name": "events",
            "dataset": "dataos://lakehouse:src/events",
            "incrementalRead": {"onRewrite": "full-refresh"},
        },
        {**FILES, "incrementalRead": {}},
    ]
    path = write(tmp_path, job_doc("two", inputs, "SELECT id FROM events", "two"), "m")
    with pytest.raises(ManifestError) as err:
        load_jobs([path], load_depots(DEMO_DEPOTS))
    assert (
        f"{path}: workflow.dag[0].spec.stackSpec.job.inputs[0].incrementalRead.onRewrite: a full refresh "
        "replaces the outputs, so the job's other incremental inputs (uploads)"
    ) in str(err.value)


def test_a_new_file_under_a_processed_name_is_read_and_archived_beside_it(
    settings: Settings, tmp_path: Path
) -> None:
    files = {
        **FILES,
        "dataset": "dataos://landing:inc/reused",
        "incrementalRead": {"archive": "archive/reused"},
    }
    folder = settings.home / "landing" / "inc" / "reused"
    folder.mkdir(parents=True, exist_ok=True)
    archive = settings.home / "archive" / "reused"
    doc = job_doc("inc-reused", [files], "SELECT id, v FROM uploads", "inc_reused")
    landed: list[list[dict]] = [
        [{"id": 1, "v": "first"}, {"id": 2, "v": "first"}],
        [{"id": 3, "v": "second"}],
        [{"id": 4, "v": "third"}, {"id": 5, "v": "third"}, {"id": 6, "v": "third"}],
    ]
    for records in landed:
        (folder / "seed0.json").write_text("".join(json.dumps(r) + "\n" for r in records))
        engine_run(settings, tmp_path, doc)
    expected = sorted((r["id"], r["v"]) for records in landed for r in records)
    assert table_rows(settings, "out.inc_reused") == expected
    assert not list(folder.iterdir())
    kept = {
        p.name: [json.loads(line)["id"] for line in p.read_text().splitlines()] for p in archive.iterdir()
    }
    assert kept == {"seed0.json": [1, 2], "seed0.1.json": [3], "seed0.2.json": [4, 5, 6]}

    # without an archive, a file rewritten in place is read again; one left alone is not
    plain = {**FILES, "dataset": "dataos://landing:inc/inplace", "incrementalRead": {}}
    folder = settings.home / "landing" / "inc" / "inplace"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.json").write_text(json.dumps({"id": 1, "v": "a"}) + "\n")
    doc = job_doc("inc-inplace", [plain], "SELECT id, v FROM uploads", "inc_inplace")
    engine_run(settings, tmp_path / "inplace", doc)
    assert engine_run(settings, tmp_path / "inplace", doc).skipped
    (folder / "a.json").write_text(json.dumps({"id": 2, "v": "a2"}) + "\n")
    engine_run(settings, tmp_path / "inplace", doc)
    assert table_rows(settings, "out.inc_inplace") == [(1, "a"), (2, "a2")]


def test_replay_config_mistakes_are_refused_before_the_run(settings: Settings, tmp_path: Path) -> None:
    def problems(doc: dict, **request: object) -> list[str]:
        (lj,) = load_jobs([write(tmp_path, doc, "m")])
        return request_problems(lj.dag_job.job, StateRequest(**request))  # type: ignore[arg-type]

    doc = job_doc("replay", [FLARE_BLOCK], "SELECT id, ts FROM events", "replay", "overwrite")
    listed = "end, start, events.start, events.end"
    assert problems(doc, values={"strat": "2024-01-01"}) == [
        f"state.strat: 'strat' is no incremental key; allowed: {listed}"
    ]
    assert problems(doc, values={"evnts.start": "2024-01-01"}) == [
        f"state.evnts.start: 'evnts' is no input with an incremental block; allowed keys: {listed}"
    ]
    assert problems(doc, values={"events.start": "2024-01-01"}, reset=True) == []
    plain = job_doc(
        "plain", [{"name": "events", "dataset": "dataos://lakehouse:src/events"}], "SELECT 1 AS x", "p"
    )
    assert problems(plain, reset=True) == [
        "the job has no incremental input, so state and reset_state do not apply"
    ]
    appending = job_doc("replay", [FLARE_BLOCK], "SELECT id, ts FROM events", "replay")
    (refused,) = problems(appending, values={"start": "2024-01-01"})
    assert refused.startswith("state: replaying from chosen values into append output(s) result would append")
    archived = job_doc("files", [FILES], "SELECT id, v FROM uploads", "files")
    (refused,) = problems(archived, reset=True)
    assert refused.startswith("reset_state: input(s) uploads moved their processed files to the archive")

    # values that are no value of the key's type fail before anything is read or written
    events(settings, "(1, timestamp'2024-01-01 10:00:00')", replace=True)
    run(settings, tmp_path / "ok", doc)
    before = snapshots(settings, "out.replay")
    for value, reason in [
        ("yesterday", "'yesterday' is relative to the run, not a point to replay from"),
        ("2024-13-45", "'2024-13-45' is not a timestamp"),
    ]:
        failed = run(settings, tmp_path / "ok", doc, ok=False, config={"state": {"start": value}})
        assert f"state value for 'start': {reason}" in failure_message(failed)
        assert snapshots(settings, "out.replay") == before
    # config naming a key of no input fails the run before Spark starts
    failed = run(settings, tmp_path / "ok", doc, ok=False, config={"state": {"strat": "2024-01-01 00:00:00"}})
    assert "replay config: state.strat: 'strat' is no incremental key" in failure_message(failed)
