"""Writes that never repeat, never lose and never silently change data: a re-executed run finds its
own committed rows, lossy type changes are refused before any commit, a lost catalog is loud. Run
through Dagster, read back with pyiceberg."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    Definitions,
    JobDefinition,
    ReexecutionOptions,
    define_asset_job,
    execute_job,
    in_process_executor,
    materialize,
    reconstructable,
)

from flare_assets.catalog import load_catalog
from flare_assets.engine.tables import access, commits
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets_tests.conftest import build_definitions, failure_message, shared_spark
from flare_assets_tests.manifests import job, workflow, write


def manifest(name: str, sql: str, target: str, options: dict[str, Any], **output: Any) -> dict[str, Any]:
    outputs = [
        {"name": "result", "dataset": f"dataos://lakehouse:rel/{target}", "options": options, **output}
    ]
    return workflow(name, job(steps=[{"name": "result", "sql": sql}], outputs=outputs), dag="write")


def run(settings: Settings, folder: Path, doc: dict[str, Any], tags: dict[str, str] | None = None):  # noqa: ANN201
    write(folder, doc, "m")
    defs = build_definitions(settings, [folder])
    return materialize(
        list(defs.assets or []), resources={"spark": shared_spark()}, raise_on_error=False, tags=tags
    )


def ids(settings: Settings, table: str) -> Counter[int]:
    rows = load_catalog(settings=settings).load_table(table).scan().to_arrow().to_pylist()
    return Counter(r["id"] for r in rows)


@pytest.fixture
def fault_on_tag() -> Iterator[None]:
    """Every attempt to tag the run's snapshot fails, as a commit that keeps losing to other writers."""

    def fail(table: str, what: str) -> None:
        if what == "tag":
            raise RuntimeError(f"injected fault tagging {table}")

    commits.METADATA_COMMIT_HOOKS.append(fail)
    yield
    if fail in commits.METADATA_COMMIT_HOOKS:
        commits.METADATA_COMMIT_HOOKS.remove(fail)


ROWS_SQL = "SELECT id, concat('n', id) AS name FROM range(1, 1001)"


def test_a_re_executed_run_finds_its_committed_rows_and_does_not_write_them_twice(
    settings: Settings, tmp_path: Path, fault_on_tag: None
) -> None:
    doc = manifest("idem", ROWS_SQL, "idem", {"saveMode": "append"}, tags=["pii"])
    first = run(settings, tmp_path, doc)
    assert not first.success
    table = load_catalog(settings=settings).load_table("rel.idem")
    landed = table.current_snapshot()
    assert landed is not None
    message = failure_message(first)
    assert f"rows committed as snapshot {landed.snapshot_id}; tagging failed: " in message
    assert "injected fault tagging lakehouse.rel.idem" in message
    assert landed.summary["flare.dagster.root-run-id"] == first.run_id
    assert set(ids(settings, "rel.idem").values()) == {1}

    commits.METADATA_COMMIT_HOOKS.clear()  # the conflict is over; Dagster re-executes the run
    again = run(settings, tmp_path, doc, tags={"dagster/root_run_id": first.run_id})
    assert again.success
    counted = ids(settings, "rel.idem")
    assert len(counted) == 1000 and set(counted.values()) == {1}  # not doubled
    table = load_catalog(settings=settings).load_table("rel.idem")
    assert [s.snapshot_id for s in table.snapshots()] == [landed.snapshot_id]
    tag = f"run_{again.run_id.split('-')[0]}"
    assert table.metadata.refs[tag].snapshot_id == landed.snapshot_id
    (mat,) = again.get_asset_materialization_events()
    meta = mat.materialization.metadata
    assert meta["committed_by_earlier_attempt"].value == (
        f"1000 rows committed by an earlier attempt of this run as snapshot {landed.snapshot_id}; "
        "not written again"
    )
    assert meta["rows_written"].value == 0 and meta["dagster/row_count"].value == 1000

    # a new run (not a re-execution) appends, as it always did
    fresh = run(settings, tmp_path, doc)
    assert fresh.success
    assert set(ids(settings, "rel.idem").values()) == {2}


def idem_job() -> JobDefinition:
    """The job a reconstructable run of this module executes: the manifests in FLARE_TEST_PIPELINES,
    on the test process's JVM."""
    defs = build_definitions(Settings.from_env(), [Path(os.environ["FLARE_TEST_PIPELINES"])])
    job = define_asset_job("idem_job", selection=AssetSelection.all())
    return Definitions(
        assets=defs.assets, jobs=[job], resources={"spark": shared_spark()}, executor=in_process_executor
    ).resolve_job_def("idem_job")


def test_dagster_re_execution_from_failure_keeps_the_rows_once(
    settings: Settings, tmp_path: Path, fault_on_tag: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, through Dagster's own re-execution (ReexecutionOptions.from_failure)."""
    folder = tmp_path / "pipelines"
    write(folder, manifest("reexec", ROWS_SQL, "reexec", {"saveMode": "append"}), "m")
    monkeypatch.setenv("FLARE_TEST_PIPELINES", str(folder))
    job = reconstructable(idem_job)
    with DagsterInstance.ephemeral() as instance:
        with execute_job(job, instance, raise_on_error=False) as first:
            assert not first.success
        landed = load_catalog(settings=settings).load_table("rel.reexec").current_snapshot()
        assert int(landed.summary["flare.dagster.root-run-created-ms"]) <= landed.timestamp_ms
        commits.METADATA_COMMIT_HOOKS.clear()
        options = ReexecutionOptions.from_failure(first.run_id, instance)
        with execute_job(job, instance, reexecution_options=options, raise_on_error=False) as again:
            assert again.success
            assert again.dagster_run.root_run_id == first.run_id
            (mat,) = again.get_asset_materialization_events()
            assert (
                str(landed.snapshot_id) in mat.materialization.metadata["committed_by_earlier_attempt"].value
            )
    counted = ids(settings, "rel.reexec")
    assert len(counted) == 1000 and set(counted.values()) == {1}


def test_a_tag_commit_that_loses_to_a_concurrent_commit_is_retried(
    settings: Settings, tmp_path: Path
) -> None:
    """Another writer commits between the data commit and the run's tag, and the tag's first commit
    fails on Iceberg's own conflict check (CommitFailedException): the table is refreshed, the tag
    committed on the second attempt, the rows written once."""
    attempts: list[str] = []

    def concurrent(table: str, what: str) -> None:
        if what != "tag":
            return
        attempts.append(table)
        if len(attempts) > 1:
            return
        spark = get_session(settings)
        ops = access.java_table(spark, table).operations()
        base = ops.current()
        other = load_catalog(settings=settings).load_table("rel.busy")
        with other.transaction() as tx:  # the other writer wins the race
            tx.set_properties({"other.writer": "was here"})
        jvm = spark.sparkContext._jvm
        stale = jvm.org.apache.iceberg.TableMetadata.buildFrom(base).setProperties({"late": "x"}).build()
        ops.commit(base, stale)  # raises CommitFailedException: the table moved underneath

    commits.METADATA_COMMIT_HOOKS.append(concurrent)
    try:
        result = run(settings, tmp_path, manifest("busy", ROWS_SQL, "busy", {"saveMode": "append"}))
    finally:
        commits.METADATA_COMMIT_HOOKS.remove(concurrent)
    assert result.success, failure_message(result)
    assert attempts == ["lakehouse.rel.busy", "lakehouse.rel.busy"]
    table = load_catalog(settings=settings).load_table("rel.busy")
    assert table.properties["other.writer"] == "was here" and "late" not in table.properties
    tag = f"run_{result.run_id.split('-')[0]}"
    assert table.metadata.refs[tag].snapshot_id == table.current_snapshot().snapshot_id
    assert set(ids(settings, "rel.busy").values()) == {1}


TYPED = (
    "SELECT CAST(id AS BIGINT) AS id, CAST(id * 10 AS BIGINT) AS amount, DATE '2024-01-01' AS day, "
    "CAST(1.25 AS DECIMAL(10,2)) AS price, CAST(id AS INT) AS n, CAST(0.5 AS FLOAT) AS f, "
    "CAST(2.50 AS DECIMAL(10,2)) AS d FROM range(1, 4)"
)


def schema_of(settings: Settings, table: str) -> tuple[int, list[tuple[str, str]]]:
    meta = load_catalog(settings=settings).load_table(table).metadata
    return len(meta.schemas), [(f.name, str(f.field_type)) for f in meta.schema().fields]


def test_lossy_type_changes_are_refused_before_anything_is_committed(
    settings: Settings, tmp_path: Path
) -> None:
    append = {"saveMode": "append"}
    assert run(settings, tmp_path, manifest("types", TYPED, "types", append)).success
    before = schema_of(settings, "rel.types")
    head = load_catalog(settings=settings).load_table("rel.types").current_snapshot().snapshot_id
    lossy = (
        "SELECT CAST(id AS BIGINT) AS id, 10.75D AS amount, TIMESTAMP '2024-01-01 10:30:00' AS day, "
        "CAST(1.255 AS DECIMAL(10,3)) AS price, 'n/a' AS n, 'new' AS extra FROM range(4, 6)"
    )
    result = run(settings, tmp_path, manifest("types", lossy, "types", append))
    assert not result.success
    message = failure_message(result)
    for expected in (
        "column 'amount' is bigint in the table and double in the result; writing it would drop the "
        "fractional part of its values",
        "column 'day' is date in the table and timestamp in the result; writing it would drop the time of day",
        "column 'price' is decimal(10,2) in the table and decimal(10,3) in the result; writing it would round "
        "its values to 2 decimal places",
        "column 'n' is int in the table and string in the result; writing it would turn every value that is "
        "not a int into null",
        "Nothing was committed",
    ):
        assert expected in message
    table = load_catalog(settings=settings).load_table("rel.types")
    assert schema_of(settings, "rel.types") == before  # no `extra` column, no new schema in the history
    assert table.current_snapshot().snapshot_id == head

    # a result that fails to compute adds no column either
    failing = TYPED.replace(
        " FROM range", ", CASE WHEN id = 2 THEN raise_error('bad row') END AS extra FROM range"
    )
    result = run(settings, tmp_path, manifest("types", failing, "types", append))
    assert not result.success and "bad row" in failure_message(result)
    assert schema_of(settings, "rel.types") == before

    # widening is a lossless schema change, committed with the rows it was for
    wide = (
        "SELECT CAST(id AS BIGINT) AS id, CAST(id AS BIGINT) AS amount, DATE '2024-01-02' AS day, "
        "CAST(1.5 AS DECIMAL(10,2)) AS price, 3000000000 AS n, CAST(0.1 AS DOUBLE) AS f, "
        "CAST(12345678901.25 AS DECIMAL(13,2)) AS d FROM range(7, 8)"
    )
    assert run(settings, tmp_path, manifest("types", wide, "types", append)).success
    _, columns = schema_of(settings, "rel.types")
    assert dict(columns) == {
        "id": "long",
        "amount": "long",
        "day": "date",
        "price": "decimal(10, 2)",
        "n": "long",
        "f": "double",
        "d": "decimal(13, 2)",
    }
    rows = {
        r["id"]: r
        for r in load_catalog(settings=settings).load_table("rel.types").scan().to_arrow().to_pylist()
    }
    assert sorted(rows) == [1, 2, 3, 7]
    assert rows[7]["n"] == 3000000000 and rows[7]["f"] == 0.1 and str(rows[7]["d"]) == "12345678901.25"
    assert rows[1]["n"] == 1 and rows[1]["f"] == 0.5
