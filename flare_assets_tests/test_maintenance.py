"""Table maintenance on real tables: Flare actions through Iceberg's procedures, the maintenance
jobs and schedules, the health sensor, and the safety rules. Micro-batches are appended with pyiceberg
(no JVM, each a real Iceberg commit); maintenance runs on Spark through Dagster."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dagster import SensorResult, build_schedule_context, build_sensor_context

from flare_assets.catalog import load_catalog
from flare_assets.cli import main
from flare_assets.defs.build import build_definitions
from flare_assets.defs.tables import maintenance_run_config
from flare_assets.engine.maintenance.actions import run_action
from flare_assets.engine.maintenance.health import read_health
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.actions import Action
from flare_assets_tests.conftest import failure_message, materialize_all, shared_spark
from flare_assets_tests.manifests import job, workflow, write

SCHEMA = pa.schema([("id", pa.int64()), ("day", pa.string()), ("amount", pa.float64())])


def make_table(settings: Settings, name: str, batches: int, rows: int = 20) -> None:
    """A table partitioned by day with `batches` micro-batch appends (one small file per day each)."""
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.shop")
    spark.sql(f"DROP TABLE IF EXISTS lakehouse.shop.{name} PURGE")
    spark.sql(
        f"CREATE TABLE lakehouse.shop.{name} (id BIGINT, day STRING, amount DOUBLE) USING iceberg "
        "PARTITIONED BY (day)"
    )
    append(settings, name, batches, rows)


def append(settings: Settings, name: str, batches: int, rows: int = 20, start: int = 0) -> None:
    table = load_catalog(settings=settings).load_table(f"shop.{name}")
    for b in range(start, start + batches):
        ids = list(range(b * rows, (b + 1) * rows))
        table.append(
            pa.table(
                {"id": ids, "day": ["d1" if i % 2 else "d2" for i in ids], "amount": [i * 1.5 for i in ids]},
                schema=SCHEMA,
            )
        )


def health(settings: Settings, name: str):  # noqa: ANN201
    return read_health(load_catalog(settings=settings).load_table(f"shop.{name}"), name)


def ids(settings: Settings, name: str) -> set[int]:
    rows = load_catalog(settings=settings).load_table(f"shop.{name}").scan(selected_fields=("id",)).to_arrow()
    return set(rows.column("id").to_pylist())


def observations(result: Any) -> list[dict[str, Any]]:
    return [
        {k: getattr(v, "value", v) for k, v in e.event_specific_data.asset_observation.metadata.items()}
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]


def plant_orphan(settings: Settings, name: str, days_old: float) -> Path:
    orphan = Path(settings.warehouse) / "shop" / name / "data" / f"orphan-{days_old}.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"not referenced by any snapshot")
    old = time.time() - days_old * 86400
    os.utime(orphan, (old, old))
    return orphan


def action_definitions(settings: Settings, folder: Path, actions: list[dict]):  # noqa: ANN201
    inputs = [
        {"name": "events", "dataset": "dataos://lakehouse:shop/events", "format": "Iceberg"},
        {"name": "gone", "dataset": "dataos://landing:shop/gone", "format": "json"},
    ]
    doc = workflow("tidy", job(inputs, actions=actions), dag="events")
    doc["workflow"]["schedule"] = {"cron": "0 5 * * *"}
    write(folder, doc)
    return build_definitions(settings, [folder])


def test_flare_actions_run_through_icebergs_procedures(settings: Settings, tmp_path: Path) -> None:
    make_table(settings, "events", batches=8)
    gone = settings.resolve("landing") / "shop" / "gone"
    gone.mkdir(parents=True, exist_ok=True)
    (gone / "part.json").write_text('{"id": 3}\n{"id": 17}\n{"id": 9999}\n')
    orphan = plant_orphan(settings, "events", days_old=5)
    before = health(settings, "events")
    assert (before.data_files, before.small_files, before.snapshots) == (16, 16, 8)
    defs = action_definitions(
        settings,
        tmp_path / "pipelines",
        [
            {
                "name": "delete_from_dataset",
                "input": "events",
                "deleteWhere": "EXISTS (SELECT 1 FROM gone g WHERE g.id = events.id)",
            },
            {"name": "rewrite_dataset", "input": "events", "options": {"properties": {"min-input-files": 2}}},
            {"name": "rewrite_manifest", "input": "events", "options": {"useCaching": False}},
            {"name": "expire_snapshots", "input": "events", "options": {"olderThanMillis": 4102444800000}},
            {"name": "remove_orphans", "input": "events", "options": {"dryRun": True}},
        ],
    )
    assert "tidy__events_schedule" in {s.name for s in defs.schedules}
    job = defs.get_job_def("tidy__events")
    result = job.execute_in_process(resources={"spark": shared_spark()})
    assert result.success
    found = observations(result)
    assert found[0]["rows_matched"] == 2
    assert found[1]["rewrite_dataset.rewritten_data_files_count"] == 16
    assert found[1]["rewrite_dataset.added_data_files_count"] == 2
    assert found[3]["expire_snapshots.deleted_data_files_count"] >= 16
    assert found[4]["remove_orphans.orphan_files"] == 1 and orphan.name in found[4]["orphan_files"]
    assert orphan.exists(), "a dry run deletes nothing"
    after = health(settings, "events")
    assert (after.data_files, after.small_files, after.snapshots) == (2, 0, 1)
    assert ids(settings, "events") == set(range(160)) - {3, 17}


def test_sort_with_zorder_and_a_where_clause(settings: Settings) -> None:
    make_table(settings, "zorder", batches=4)
    spark = get_session(settings)
    action = Action(
        name="rewrite_dataset",
        input="t",
        options={
            "strategy": "sort",
            "sortOrder": "zorder(id, amount)",
            "where": "day = 'd1'",
            "properties": {"min-input-files": 2},
        },
    )
    done = run_action(spark, "lakehouse.shop.zorder", action)
    assert (
        "sort_order => 'zorder(id, amount)'" in done.statement
        and "where => 'day = ''d1'''" not in done.statement
    )
    assert done.counters["rewritten_data_files_count"] == 4, "only the d1 partition's files"
    after = health(settings, "zorder")
    assert after.data_files == 5 and ids(settings, "zorder") == set(range(80))


def test_safety_rules_refuse_before_anything_runs(settings: Settings, tmp_path: Path) -> None:
    make_table(settings, "events", batches=3)
    spark = get_session(settings)
    snapshots = health(settings, "events")
    first = min(
        load_catalog(settings=settings).load_table("shop.events").snapshots(), key=lambda s: s.timestamp_ms
    )
    spark.sql(f"ALTER TABLE lakehouse.shop.events CREATE TAG keep AS OF VERSION {first.snapshot_id}")
    recent = plant_orphan(settings, "events", days_old=1)
    defs = action_definitions(
        settings,
        tmp_path / "p1",
        [
            {"name": "rewrite_manifest", "input": "events"},
            {
                "name": "remove_orphans",
                "input": "events",
                "options": {"olderThanMillis": int(time.time() * 1000)},
            },
        ],
    )
    result = defs.get_job_def("tidy__events").execute_in_process(
        resources={"spark": shared_spark()}, raise_on_error=False
    )
    message = failure_message(result)
    assert "remove_orphans on lakehouse.shop.events: olderThan TIMESTAMP" in message
    assert "is less than 3 days ago; files of writes in progress would look orphaned" in message
    assert "or force: true; no action ran" in message
    assert recent.exists() and health(settings, "events").manifests == snapshots.manifests
    # expiry keeps the heads of branches and tags
    head = snapshots.refs["main"]
    defs = action_definitions(
        settings,
        tmp_path / "p2",
        [{"name": "expire_snapshots", "input": "events", "options": {"snapshotIds": [head]}}],
    )
    result = defs.get_job_def("tidy__events").execute_in_process(
        resources={"spark": shared_spark()}, raise_on_error=False
    )
    assert f"{head} (head of main); heads of branches and tags are never expired" in failure_message(result)
    done = run_action(
        spark,
        "lakehouse.shop.events",
        Action(name="expire_snapshots", input="t", options={"olderThanMillis": 4102444800000}),
    )
    kept = {s.snapshot_id for s in load_catalog(settings=settings).load_table("shop.events").snapshots()}
    assert kept == {head, first.snapshot_id} and done.counters["deleted_manifest_lists_count"] == 1
    # forced, a short cutoff goes through Iceberg's action API (its procedure refuses under a day)
    done = run_action(
        spark,
        "lakehouse.shop.events",
        Action(
            name="remove_orphans",
            input="t",
            options={"olderThanMillis": int(time.time() * 1000), "force": True},
        ),
    )
    assert recent.name in [Path(f).name for f in done.files] and not recent.exists()
    # a table that does not exist
    spark.sql("DROP TABLE lakehouse.shop.events PURGE")
    result = defs.get_job_def("tidy__events").execute_in_process(
        resources={"spark": shared_spark()}, raise_on_error=False
    )
    assert "expire_snapshots: table lakehouse.shop.events does not exist; no action ran" in failure_message(
        result
    )


SALES = {
    "name": "raw",
    "dataset": "dataos://lakehouse:shop/sales",
    "options": {"saveMode": "append"},
    "maintenance": {
        "thresholds": {"minSmallFiles": 6, "maxManifests": 40, "maxSnapshots": 40},
        "schedules": {"orphans": False},  # YAML's `off`
    },
}
WRITER = workflow(
    "sales", job([{"name": "raw", "dataset": "dataos://landing:shop/raw", "format": "json"}], outputs=[SALES])
)


def test_health_sensor_observes_and_launches_only_needed_maintenance(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_table(settings, "sales", batches=5)
    write(tmp_path / "pipelines", WRITER)
    defs = build_definitions(settings, [tmp_path / "pipelines"])
    schedules = {s.name: s for s in defs.schedules}
    assert {"flare_maintenance__compaction", "flare_maintenance__expiry"} <= set(schedules)
    assert "flare_maintenance__orphans" not in schedules  # turned off for the table's only writer
    (scheduled,) = schedules["flare_maintenance__expiry"].evaluate_tick(build_schedule_context()).run_requests
    assert scheduled.run_config == maintenance_run_config(
        "flare_maintenance", kinds=["expiry"], tables=["lakehouse.shop.sales"]
    )
    sensor = defs.get_sensor_def("flare_table_health")
    tick = sensor(build_sensor_context())
    assert isinstance(tick, SensorResult)
    (obs,) = tick.asset_events
    figures = {k: getattr(v, "value", v) for k, v in obs.metadata.items()}
    assert (figures["data_files"], figures["small_files"], figures["snapshots"]) == (10, 10, 5)
    assert figures["small_file_ratio"] == 1.0 and figures["avg_file_size"] > 0
    assert figures["needs"] == "compaction (small-file ratio 1.00 >= 0.5 (10 small files))"
    (run,) = tick.run_requests
    assert (run.job_name, run.tags["flare/table"]) == ("flare_maintenance", "lakehouse.shop.sales")
    op_config = run.run_config["ops"]["flare_maintenance_op"]["config"]
    assert op_config == {"tables": ["lakehouse.shop.sales"], "kinds": ["compaction"], "targeted": True}
    result = defs.get_job_def(run.job_name).execute_in_process(
        run_config=run.run_config, resources={"spark": shared_spark()}
    )
    (after,) = observations(result)
    assert (after["data_files_before"], after["data_files_after"]) == (10, 2)
    assert (after["small_files_before"], after["small_files_after"]) == (10, 0)
    assert after["snapshots_after"] > after["snapshots_before"] == 5, "partial progress: a commit per group"
    assert after["maintenance"] == "compaction" and after["duration_s"] > 0
    assert ids(settings, "sales") == set(range(100))
    tick = sensor(build_sensor_context())
    assert tick.run_requests == [] and tick.asset_events[0].metadata["needs"].value == "nothing"
    capsys.readouterr()
    assert main(["health", "shop.sales", "--format", "json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["table"], line["data_files"], line["small_files"], line["needs"]) == ("shop.sales", 2, 0, {})
    assert main(["health", "shop.nothing"]) == 1
    assert capsys.readouterr().err.startswith("flare health: ")


def test_one_job_and_a_schedule_per_cron_maintain_many_tables(settings: Settings, tmp_path: Path) -> None:
    """Tables share the maintenance job of their pool and a schedule per cron; a run over every table
    maintains those written and skips those not written yet."""
    make_table(settings, "sales", batches=5)
    stock = {
        **SALES,
        "dataset": "dataos://lakehouse:shop/stock",
        "maintenance": {"schedules": {"expiry": "0 5 * * *"}},
    }
    raw = [{"name": "raw", "dataset": "dataos://landing:shop/raw", "format": "json"}]
    write(tmp_path / "pipelines", WRITER)
    write(tmp_path / "pipelines", workflow("stock", job(raw, outputs=[stock])))
    defs = build_definitions(settings, [tmp_path / "pipelines"])
    schedules = {s.name: s for s in defs.schedules if s.name.startswith("flare_maintenance")}
    assert sorted(schedules) == [
        "flare_maintenance__compaction",
        "flare_maintenance__expiry__0_3_x_x_x",
        "flare_maintenance__expiry__0_5_x_x_x",
        "flare_maintenance__manifests",
        "flare_maintenance__orphans",  # stock's alone: sales turns it off
    ]
    (scheduled,) = (
        schedules["flare_maintenance__compaction"].evaluate_tick(build_schedule_context()).run_requests
    )
    tables = scheduled.run_config["ops"]["flare_maintenance_op"]["config"]["tables"]
    assert tables == ["lakehouse.shop.sales", "lakehouse.shop.stock"]
    maintain = defs.get_job_def("flare_maintenance")
    result = maintain.execute_in_process(
        run_config=maintenance_run_config(maintain.name, kinds=["compaction"], targeted=True),
        resources={"spark": shared_spark()},
    )
    (sales,) = observations(result)  # stock is not written yet: skipped, not failed
    assert (sales["data_files_before"], sales["data_files_after"]) == (10, 2)
    result = maintain.execute_in_process(
        run_config=maintenance_run_config(
            maintain.name, kinds=["expiry"], tables=["dataos://lakehouse:shop/stock"]
        ),
        resources={"spark": shared_spark()},
        raise_on_error=False,
    )
    assert "table lakehouse.shop.stock does not exist; no maintenance ran" in failure_message(result)


def test_delete_from_the_ui_counts_first_and_refuses_always_true(settings: Settings, tmp_path: Path) -> None:
    make_table(settings, "sales", batches=2)
    write(tmp_path / "pipelines", WRITER)
    job = build_definitions(settings, [tmp_path / "pipelines"]).get_job_def("flare_maintenance")

    def run(**config: Any):  # noqa: ANN202
        return job.execute_in_process(
            run_config=maintenance_run_config(
                job.name, **{"tables": ["lakehouse.shop.sales"], "kinds": [], **config}
            ),
            resources={"spark": shared_spark()},
            raise_on_error=False,
        )

    result = run(tables=[], delete_where="id < 10")
    assert "delete_from_dataset needs `tables`: the tables to delete from; no maintenance ran" in (
        failure_message(result)
    )
    result = run(tables=["lakehouse.shop.nope"], kinds=["compress"])
    assert (
        "unknown maintenance compress; allowed: compaction, manifests, expiry, orphans; this job maintains "
        "no table lakehouse.shop.nope; its tables: lakehouse.shop.sales; no maintenance ran"
    ) in failure_message(result)

    result = run(delete_where="1 = 1")
    assert "delete_from_dataset needs a deleteWhere that does not match every row (got '1 = 1')" in (
        failure_message(result)
    )
    result = run(delete_where="id < 10 AND", dry_run=True)
    assert "'id < 10 AND' is not a valid SQL predicate" in failure_message(result)
    (counted,) = observations(run(delete_where="id < 10", dry_run=True))
    assert (counted["rows_matched"], counted["rows_deleted"]) == (10, 0) and len(ids(settings, "sales")) == 40
    (deleted,) = observations(run(delete_where="id < 10"))
    assert deleted["rows_deleted"] == 10 and ids(settings, "sales") == set(range(10, 40))


@pytest.mark.slow
def test_compaction_beside_a_writer_fails_neither(settings: Settings) -> None:
    make_table(settings, "busy", batches=12)
    spark = get_session(settings)
    errors: list[BaseException] = []

    def writer() -> None:
        session = get_session(settings)
        try:
            for n in range(6):
                session.sql(
                    f"INSERT INTO lakehouse.shop.busy VALUES ({10_000 + n}, 'd1', 1.0), ({20_000 + n}, 'd2', 2.0)"
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    done = run_action(
        spark,
        "lakehouse.shop.busy",
        Action(name="rewrite_dataset", input="t", options={"properties": {"min-input-files": 2}}),
    )
    thread.join()
    assert errors == []
    assert "'partial-progress.enabled', 'true'" in done.statement
    assert done.counters["rewritten_data_files_count"] >= 24
    expected = set(range(240)) | {10_000 + n for n in range(6)} | {20_000 + n for n in range(6)}
    assert ids(settings, "busy") == expected


WRITE_THEN_TIDY = workflow(
    "copy",
    job(
        [{"name": "src", "dataset": "dataos://lakehouse:shop/src", "format": "Iceberg"}],
        [{"name": "total", "sql": "SELECT day, count(*) AS n FROM src GROUP BY day"}],
        [{"name": "total", "dataset": "dataos://lakehouse:shop/totals"}],
        actions=[{"name": "rewrite_manifest", "input": "src"}],
    ),
    dag="copy",
)


def test_actions_of_a_job_with_outputs_run_after_its_writes(settings: Settings, tmp_path: Path) -> None:
    make_table(settings, "src", batches=4)
    assert health(settings, "src").manifests == 4
    write(tmp_path / "pipelines", WRITE_THEN_TIDY)
    result = materialize_all(build_definitions(settings, [tmp_path / "pipelines"]))
    assert result.success
    rows = load_catalog(settings=settings).load_table("shop.totals").scan().to_arrow().to_pylist()
    assert sorted((r["day"], r["n"]) for r in rows) == [("d1", 40), ("d2", 40)]
    assert health(settings, "src").manifests == 1
