"""Housekeeping on real data: the SDLB demo staging archived after every write, Iceberg archiving and
compaction, retention on files and tables, crash safety of a killed run, and bad expressions."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flare_assets.catalog import load_catalog
from flare_assets.demo.uploads import generate_uploads
from flare_assets.depots import load_depots
from flare_assets.engine import JobFailed, RunContext, housekeeping, run_job
from flare_assets.engine.batch.tuning import job_conf
from flare_assets.engine.tables.layout import FileSystem, file_partitions
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import LoadedJob, load_jobs
from flare_assets.spec.model import Output
from flare_assets_tests.conftest import (
    DEMO_DEPOTS,
    build_definitions,
    materialize_all,
    shared_spark,
)
from flare_assets_tests.manifests import job, job_of, workflow, write

DEMO = DEMO_DEPOTS.parent / "pipelines" / "reporting_units.yaml"
COLUMNS = ["run_id", "reporting_unit"]
# The demo's expressions with buckets of 3 run ids, archiving runs older than 2 runs
ARCHIVE = (
    "if(elements.run_id < (runId - 2), map('run_id', (cast(elements.run_id as integer) div 3) * 3, "
    "'reporting_unit', elements.reporting_unit), elements)"
)
COMPACT = "elements.run_id < runId - 2"
CHECKSUM = ["count(*) AS rows", "sum(xxhash64(reporting_unit, upload, metric, value)) AS checksum"]


def _demo_manifest(folder: Path) -> Path:
    doc = yaml.safe_load(DEMO.read_text().replace("runId - 500", "runId - 2").replace("500", "3"))
    job_of(doc)["outputs"][0]["housekeepingMode"]["compactPartitionExpression"] = COMPACT
    return write(folder, doc, "reporting_units")


def _load(path: Path, settings: Settings) -> LoadedJob:
    (lj,) = load_jobs([path], load_depots(settings.depots))
    return lj


def _run(lj: LoadedJob, settings: Settings, number: int):  # noqa: ANN202
    """Runs the job as its asset does; its run number comes from the last committed run."""
    spark = get_session(settings)
    stack = lj.dag_job.spec.stack_spec
    with job_conf(spark, stack.conf()):
        result = run_job(RunContext(spark, lj.dag_job.job, load_depots(settings.depots), settings, lj.label))
    assert result.run_number == number
    return result


def _upload_hour(settings: Settings, hour: int, units: int = 2) -> None:
    """Only this hour's uploads are in the landing folder, as an incremental input would read them."""
    landing = settings.resolve("landing")
    shutil.rmtree(landing / "reporting_units" / "uploads", ignore_errors=True)
    generate_uploads(landing, units=units, uploads=2, first=hour * 10)


def _folders(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.glob("run_id=*/reporting_unit=*")}


def test_demo_staging_is_archived_and_compacted_after_every_write(settings: Settings, tmp_path: Path) -> None:
    path = _demo_manifest(tmp_path / "pipelines")
    root = settings.resolve("staging") / "reporting_units" / "staged"
    # run 1 through Dagster: the materialization reports the housekeeping
    _upload_hour(settings, 1)
    result = materialize_all(build_definitions(settings, [path]))
    (mat,) = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    assert meta["housekeeping_mode"].value == "archive_compaction"
    assert meta["housekeeping_partitions_after"].value == 2
    lj = _load(path, settings)
    for number in range(2, 8):
        _upload_hour(settings, number)
        out = _run(lj, settings, number).outputs[0]
    # at run 7: runs 1, 2 are in bucket 0, runs 3, 4 in bucket 3; 5, 6, 7 stay; buckets are compacted
    assert out.housekeeping is not None
    assert out.housekeeping.archived == {
        "run_id=4/reporting_unit=rp01": "run_id=3/reporting_unit=rp01",
        "run_id=4/reporting_unit=rp02": "run_id=3/reporting_unit=rp02",
    }
    assert sorted(out.housekeeping.compacted) == [
        "run_id=3/reporting_unit=rp01",
        "run_id=3/reporting_unit=rp02",
    ]
    units = ["rp01", "rp02"]
    assert _folders(root) == {f"run_id={r}/reporting_unit={u}" for r in (0, 3, 5, 6, 7) for u in units}
    assert not (root / "_flare_housekeeping").exists()
    spark = get_session(settings)
    rows = spark.read.parquet(str(root)).select("run_id", "reporting_unit", "upload").distinct().collect()
    expected = {
        (n if n >= 5 else n // 3 * 3, u, n * 10 + i) for n in range(1, 8) for u in units for i in (0, 1)
    }
    assert {(r.run_id, r.reporting_unit, r.upload) for r in rows} == expected
    assert spark.read.parquet(str(root)).count() == 7 * 2 * 2 * 4  # no row lost, none doubled
    for bucket in (0, 3):
        data = [p.name for p in (root / f"run_id={bucket}" / "reporting_unit=rp01").iterdir()]
        assert sorted(n for n in data if not n.startswith(".")) == [
            "_FLARE_COMPACTED",
            *[n for n in data if n.startswith("part-")],
        ]
        assert len([n for n in data if n.startswith("part-")]) == 1

    # the standalone job at the last run number finds nothing to do: no compaction is redone
    before = {p: p.stat().st_mtime_ns for p in root.rglob("part-*")}
    defs = build_definitions(settings, [path])
    job = defs.get_job_def("housekeeping__staging__reporting_units__staged")
    done = job.execute_in_process(resources={"spark": shared_spark()})
    (obs,) = [
        e.event_specific_data.asset_observation
        for e in done.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert obs.metadata["run_number"].value == 7
    assert obs.metadata["housekeeping_partitions_compacted"].value == 0
    assert obs.metadata["housekeeping_partitions_after"].value == 10
    assert {p: p.stat().st_mtime_ns for p in root.rglob("part-*")} == before


def _staging(name: str, sql: str, output: dict, **input_keys: object) -> dict:
    """The demo's staging job, reading the uploads and writing `output` (named staged)."""
    uploads = {"name": "uploads", "dataset": "dataos://landing:reporting_units/uploads", **input_keys}
    return workflow(name, job([uploads], [{"name": "staged", "sql": sql}], [output]), dag="stage")


ICEBERG_OUTPUT = _staging(
    "units-table",
    "SELECT reporting_unit, upload, metric, value FROM uploads",
    {
        "name": "staged",
        "dataset": "dataos://lakehouse:units/staged",
        "options": {
            "saveMode": "append",
            "iceberg": {
                "partitionSpec": [
                    {"type": "identity", "column": "run_id"},
                    {"type": "identity", "column": "reporting_unit"},
                ]
            },
        },
        "housekeeping": {"archivePartitionExpression": ARCHIVE, "compactPartitionExpression": COMPACT},
    },
    format="json",
    incrementalRead={},
)


def test_iceberg_archive_in_one_commit_then_compaction_not_redone(settings: Settings, tmp_path: Path) -> None:
    lj = _load(write(tmp_path, ICEBERG_OUTPUT, "units"), settings)
    for number in range(1, 6):
        _upload_hour(settings, number)
        out = _run(lj, settings, number).outputs[0]
    assert out.housekeeping is not None
    assert out.housekeeping.archived == {
        f"run_id=2/reporting_unit={u}": f"run_id=0/reporting_unit={u}" for u in ("rp01", "rp02")
    }
    table = load_catalog(settings=settings).load_table("units.staged")
    parts = table.inspect.partitions().to_pylist()
    layout = {(p["partition"]["run_id"], p["partition"]["reporting_unit"]): p["file_count"] for p in parts}
    # runs 1 and 2 in bucket 0, compacted to one file per partition; runs 3, 4, 5 as written
    assert sorted(layout) == [(r, u) for r in (0, 3, 4, 5) for u in ("rp01", "rp02")]
    assert layout[(0, "rp01")] == layout[(0, "rp02")] == 1
    rows = table.scan().to_arrow().to_pylist()
    assert len(rows) == 5 * 2 * 2 * 4
    assert {(r["run_id"], r["upload"]) for r in rows} == {
        (0 if n < 3 else n, n * 10 + i) for n in range(1, 6) for i in (0, 1)
    }
    ops = [s.summary.operation.value for s in table.snapshots()]
    # run 4 archived run 1 (a MERGE: one commit), run 5 archived run 2 and compacted bucket 0 (replace)
    assert ops[-3:] == ["append", "overwrite", "replace"]

    # compaction already done is not redone: housekeeping again commits nothing
    spark = get_session(settings)
    output = lj.dag_job.job.outputs[0]
    ctx = housekeeping.context("units-table", output, 5)
    again = housekeeping.run(spark, output, load_depots(settings.depots), settings, ctx)
    assert again.archived == {} and again.compacted == []
    table = load_catalog(settings=settings).load_table("units.staged")
    assert again.snapshot_id == table.current_snapshot().snapshot_id == out.housekeeping.snapshot_id


def _staged_files(settings: Settings, name: str, runs: int, files: int = 1) -> Path:
    spark = get_session(settings)
    root = settings.resolve("staging") / "tests" / name
    frame = spark.range(runs * 2 * 4 * files).selectExpr(
        f"CAST(id % {runs} + 1 AS INT) AS run_id",
        "concat('rp0', CAST(id DIV 7 % 2 + 1 AS STRING)) AS reporting_unit",
        "CAST(id AS INT) AS upload",
        "'revenue' AS metric",
        "id * 1.5 AS value",
    )
    frame.repartition(files).write.partitionBy(*COLUMNS).mode("overwrite").parquet(str(root))
    return root


def _checksum(settings: Settings, root: Path) -> tuple[int, int]:
    row = get_session(settings).read.parquet(str(root)).selectExpr(*CHECKSUM).first()
    return row["rows"], row["checksum"]


def _file_output(name: str, hk: dict) -> Output:
    return Output.model_validate(
        {
            "name": "staged",
            "dataset": f"dataos://staging:tests/{name}",
            "format": "parquet",
            "options": {"saveMode": "append", "partitionBy": COLUMNS},
            "housekeeping": hk,
        }
    )


def test_retention_removes_folders_and_deletes_iceberg_partitions(settings: Settings) -> None:
    root = _staged_files(settings, "kept", runs=5)
    spark = get_session(settings)
    depots = load_depots(settings.depots)
    keep = "elements.run_id >= runId - 1"
    output = _file_output("kept", {"type": "PartitionRetentionMode", "retentionCondition": keep})
    result = housekeeping.run(spark, output, depots, settings, housekeeping.context("t", output, 5))
    assert len(result.deleted) == 6 and result.partitions_after == 4
    assert {f.split("/")[0] for f in _folders(root)} == {"run_id=4", "run_id=5"}
    assert not list(root.glob("run_id=1*"))  # empty run folders are gone too
    assert sorted(r.run_id for r in spark.read.parquet(str(root)).select("run_id").distinct().collect()) == [
        4,
        5,
    ]

    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.tests")
    spark.sql(
        "CREATE OR REPLACE TABLE lakehouse.tests.kept (run_id INT, reporting_unit STRING, upload INT) "
        "USING iceberg PARTITIONED BY (run_id, reporting_unit)"
    )
    spark.sql("INSERT INTO lakehouse.tests.kept SELECT id % 5 + 1, concat('rp0', id % 2), id FROM range(40)")
    table_output = Output.model_validate(
        {
            "name": "kept",
            "dataset": "dataos://lakehouse:tests/kept",
            "options": {"iceberg": {"partitionSpec": [{"type": "identity", "column": c} for c in COLUMNS]}},
            "housekeepingMode": {"type": "retention", "retentionCondition": keep},
        }
    )
    result = housekeeping.run(
        spark, table_output, depots, settings, housekeeping.context("t", table_output, 5)
    )
    assert len(result.deleted) == 6
    table = load_catalog(settings=settings).load_table("tests.kept")
    assert sorted({r["run_id"] for r in table.scan().to_arrow().to_pylist()}) == [4, 5]
    summary = table.current_snapshot().summary
    # a metadata-only delete: whole files dropped, none rewritten
    assert summary.operation.value == "delete" and "added-data-files" not in summary.additional_properties


def _killed_during(settings: Settings, output: Output, number: int, sign: Path) -> None:
    """Starts housekeeping in another process and kills it (SIGKILL) as soon as `sign` appears."""
    cmd = [
        sys.executable,
        "-m",
        "flare_assets_tests.housekeeper",
        output.model_dump_json(by_alias=True),
        str(number),
    ]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "FLARE_SPARK_MASTER": "local[1]"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while not sign.exists():
            assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_a_run_killed_during_archiving_loses_nothing_and_the_next_run_finishes(settings: Settings) -> None:
    root = _staged_files(settings, "crash_archive", runs=6, files=40)
    before = _checksum(settings, root)
    output = _file_output("crash_archive", {"archivePartitionExpression": ARCHIVE})
    _killed_during(settings, output, 10, root / "_flare_housekeeping" / "archive.json")
    # killed mid-move: every file is in its old or its new partition, so every row is there once
    assert (root / "_flare_housekeeping" / "archive.json").exists()
    assert _checksum(settings, root) == before
    spark = get_session(settings)
    ctx = housekeeping.context("t", output, 10)
    result = housekeeping.run(spark, output, load_depots(settings.depots), settings, ctx)
    assert result.repaired  # the journaled moves were finished first
    assert _folders(root) == {f"run_id={r}/reporting_unit={u}" for r in (0, 3, 6) for u in ("rp01", "rp02")}
    assert _checksum(settings, root) == before
    assert not (root / "_flare_housekeeping").exists()


@pytest.mark.slow
def test_a_run_killed_during_compaction_loses_nothing_and_the_next_run_compacts(settings: Settings) -> None:
    root = _staged_files(settings, "crash_compact", runs=2, files=20)
    before = _checksum(settings, root)
    output = _file_output("crash_compact", {"compactPartitionExpression": "true"})
    _killed_during(settings, output, 3, root / "_flare_housekeeping" / "compacting")
    assert _checksum(settings, root) == before
    spark = get_session(settings)
    ctx = housekeeping.context("t", output, 3)
    result = housekeeping.run(spark, output, load_depots(settings.depots), settings, ctx)
    fs = FileSystem(root)
    parts = file_partitions(fs, COLUMNS)
    assert len(parts) == 4 and all(len(p.files) == 1 and p.compacted for p in parts)
    assert len(result.compacted) + len([r for r in result.repaired if "compacted" in r]) == 4
    assert _checksum(settings, root) == before


def bad(housekeeping: dict[str, str]) -> dict:
    """A staging job whose housekeeping is `housekeeping`."""
    output = {
        "name": "staged",
        "dataset": "dataos://staging:bad/staged",
        "options": {"saveMode": "append", "partitionBy": ["run_id", "reporting_unit"]},
        "housekeeping": housekeeping,
    }
    return _staging("bad-housekeeping", "SELECT reporting_unit, upload FROM uploads", output)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("housekeeping", "expected"),
    [
        (
            {"retentionCondition": "elements.run_id <"},
            "outputs[0].housekeeping: retentionCondition 'elements.run_id <' is not a Spark SQL expression",
        ),
        (
            {"retentionCondition": "elements.region = 'eu'"},
            "housekeeping.retentionCondition: names region, not a partition column of the output; "
            "allowed: run_id, reporting_unit",
        ),
        (
            {"archivePartitionExpression": "map('run', '0', 'reporting_unit', elements.reporting_unit)"},
            "housekeeping.archivePartitionExpression: names run, not a partition column of the output; "
            "allowed: run_id, reporting_unit",
        ),
        (
            {"retentionCondition": "runNumber > 3"},
            "reads 'runNumber'; allowed: feed, application, runId, runStartTime, dataObjectId, elements",
        ),
        (
            {"type": "archiveMode", "archivePartitionExpression": "elements"},
            "type 'archiveMode' is not a housekeeping mode; allowed: retention (PartitionRetentionMode), "
            "archiveCompaction (PartitionArchiveCompactionMode)",
        ),
    ],
)
def test_bad_expressions_are_named_before_spark(tmp_path: Path, housekeeping: dict, expected: str) -> None:
    path = write(tmp_path, bad(housekeeping), "bad")
    with pytest.raises(ManifestError) as info:
        load_jobs([path], load_depots(DEMO_DEPOTS))
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: workflow.dag[0].spec.stackSpec.job.outputs[0].")
    assert expected in problem


def test_wrong_type_fails_before_the_write_and_null_before_anything_moves(
    settings: Settings, tmp_path: Path
) -> None:
    _upload_hour(settings, 1)
    root = settings.resolve("staging") / "bad" / "staged"
    wrong = bad({"retentionCondition": "cast(elements.run_id as int)"})
    lj = _load(write(tmp_path / "a", wrong, "bad"), settings)
    with pytest.raises(JobFailed) as info:
        _run(lj, settings, 1)
    assert (
        "housekeeping.retentionCondition 'cast(elements.run_id as int)' returns int; expected boolean; "
        in str(info.value)
    )
    assert "nothing was written" in str(info.value)
    assert not root.exists()

    nulls = "if(elements.run_id = '1', null, elements)"
    lj = _load(write(tmp_path / "b", bad({"archivePartitionExpression": nulls}), "bad"), settings)
    for number in (1, 2):
        _upload_hour(settings, number)
        with pytest.raises(JobFailed) as info:
            _run(lj, settings, number)
        assert "was written, but its housekeeping failed" in str(info.value)
        assert "returns null for partition run_id=1/reporting_unit=rp01" in str(info.value)
    # nothing moved: both runs' partitions are as written
    assert _folders(root) == {f"run_id={r}/reporting_unit={u}" for r in (1, 2) for u in ("rp01", "rp02")}
