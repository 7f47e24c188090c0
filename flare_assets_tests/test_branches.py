"""Write-audit-publish, snapshot tags and time travel on inputs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flare_assets.catalog import load_catalog
from flare_assets.engine.tables import refs
from flare_assets.query import read_rows
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets_tests.conftest import failure_message
from flare_assets_tests.manifests import job_of
from flare_assets_tests.test_write_modes import load_source, manifest, run

ROWS = (
    "(1, 'eu', 'A', TIMESTAMP '2024-01-01 00:00:00', 10), (2, 'us', 'B', TIMESTAMP '2024-01-02 00:00:00', 20)"
)
WAP = {"saveMode": "append", "writeAuditPublish": True}


def _wap_manifest(name: str, tests: list[str]) -> dict:
    doc = manifest(name, "SELECT id, v FROM src", name, WAP)
    job_of(doc)["outputs"][0]["assertions"] = [
        {"name": "v_ok", "column": "v", "tests": tests, "blocking": True}
    ]
    return doc


def test_wap_publishes_when_checks_pass(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    result = run(settings, tmp_path, _wap_manifest("wap_ok", ["min > 0"]))
    (mat,) = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    table = load_catalog(settings=settings).load_table("out.wap_ok")
    assert meta["published"].value is True and meta["branch"].value == "main"
    assert meta["snapshot_id"].value == str(table.metadata.refs["main"].snapshot_id)
    assert meta["audit_branch"].value not in table.metadata.refs  # dropped after publishing
    # every materialization names its snapshot with a tag
    tag = meta["snapshot_tag"].value
    assert (
        tag.startswith("run_")
        and table.metadata.refs[tag].snapshot_id == table.metadata.refs["main"].snapshot_id
    )
    assert sorted(r["id"] for r in read_rows("out.wap_ok", settings=settings)) == [1, 2]


def test_wap_failure_leaves_main_and_keeps_the_branch(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    run(settings, tmp_path / "first", _wap_manifest("wap_bad", ["min > 0"]))
    before = load_catalog(settings=settings).load_table("out.wap_bad").metadata.refs["main"].snapshot_id
    load_source(settings, "(3, 'eu', 'C', TIMESTAMP '2024-01-03 00:00:00', -5)")
    result = run(settings, tmp_path / "second", _wap_manifest("wap_bad", ["min > 0"]), ok=False)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["min"].value == -5.0
    (mat,) = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    assert meta["published"].value is False
    audit = meta["audit_branch"].value
    table = load_catalog(settings=settings).load_table("out.wap_bad")
    assert table.metadata.refs["main"].snapshot_id == before  # main untouched
    assert sorted(r["id"] for r in read_rows("out.wap_bad", settings=settings)) == [1, 2]
    assert sorted(r["id"] for r in read_rows("out.wap_bad", branch=audit, settings=settings)) == [1, 2, 3]
    assert "snapshot_tag" not in meta


def test_publish_into_a_branch_that_moved_is_a_clear_error(settings: Settings) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.out")
    spark.sql("CREATE OR REPLACE TABLE lakehouse.out.moved (id INT) USING iceberg")
    spark.sql("INSERT INTO lakehouse.out.moved VALUES (1)")
    refs.create_audit_branch(spark, "lakehouse.out.moved", "audit_x", "main")
    spark.sql("INSERT INTO lakehouse.out.moved.branch_audit_x VALUES (2)")
    spark.sql("INSERT INTO lakehouse.out.moved VALUES (3)")  # another writer commits to main meanwhile
    with pytest.raises(
        ValueError,
        match="cannot publish branch 'audit_x' into 'main' of lakehouse.out.moved: "
        "Cannot fast-forward: main is not an ancestor of audit_x",
    ):
        refs.publish(spark, "lakehouse.out.moved", "audit_x", "main")


def test_time_travel_inputs(settings: Settings, tmp_path: Path) -> None:
    spark = get_session(settings)
    load_source(settings, ROWS)
    table = "lakehouse.src.events"
    first = refs.head(spark, table)[0]
    time.sleep(1.1)  # the moment below is in whole seconds: after the first snapshot, before the next
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time()))
    time.sleep(1.1)
    spark.sql("INSERT INTO lakehouse.src.events VALUES (3, 'eu', 'C', TIMESTAMP '2024-01-03 00:00:00', 30)")
    spark.sql(f"ALTER TABLE {table} CREATE TAG IF NOT EXISTS before_three AS OF VERSION {first}")

    def ids(options: dict, target: str) -> list[int]:
        doc = manifest(target, "SELECT id FROM src", target, {"saveMode": "overwrite"})
        job_of(doc)["inputs"][0]["options"] = options
        run(settings, tmp_path / target, doc)
        return sorted(r["id"] for r in read_rows(f"out.{target}", settings=settings))

    assert ids({}, "tt_now") == [1, 2, 3]
    assert ids({"snapshot-id": first}, "tt_snap") == [1, 2]
    assert ids({"asOfTimestamp": moment}, "tt_time") == [1, 2]
    assert ids({"tag": "before_three"}, "tt_tag") == [1, 2]

    for options, expected in [
        ({"snapshotId": 42}, "lakehouse.src.events has no snapshot 42"),
        ({"tag": "nope"}, "lakehouse.src.events has no tag 'nope'; known: before_three"),
        (
            {"asOfTimestamp": "2001-01-01T00:00:00"},
            "lakehouse.src.events has no snapshot at or before 2001-01-01T00:00:00",
        ),
    ]:
        doc = manifest("tt_bad", "SELECT id FROM src", "tt_bad", {"saveMode": "overwrite"})
        job_of(doc)["inputs"][0]["options"] = options
        result = run(settings, tmp_path / "bad", doc, ok=False)
        assert (
            "input 'src' (dataos://lakehouse:src/events) could not be read: " + expected
            in failure_message(result)
        )


def test_commit_by_shows_progress_on_the_audit_branch(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS + ", (3, 'apac', 'C', TIMESTAMP '2024-01-03 00:00:00', 30)")
    doc = _wap_manifest("wap_chunks", ["min > 0"])
    job_of(doc)["steps"][0]["sequence"][0]["sql"] = "SELECT id, region, v FROM src"
    job_of(doc)["outputs"][0]["options"]["extraOptions"] = {"commitBy": "region"}
    run(settings, tmp_path, doc)
    table = load_catalog(settings=settings).load_table("out.wap_chunks")
    # main's history: one append per region, in order, published together
    chain, snap = [], table.current_snapshot()
    while snap is not None:
        chain.append(snap)
        snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
    appends = [s.summary["added-records"] for s in reversed(chain) if s.summary.get("added-records")]
    assert appends == ["1", "1", "1"]
    assert sorted((r["region"], r["id"]) for r in read_rows("out.wap_chunks", settings=settings)) == [
        ("apac", 3),
        ("eu", 1),
        ("us", 2),
    ]
