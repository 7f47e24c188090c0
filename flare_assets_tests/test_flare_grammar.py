"""Flare's own spellings run as written: addresses with `-`, `.` and paths, schemas from dataos://
addresses and Avro files, and a job that reads the table it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets.spec.address import parse_address
from flare_assets_tests.conftest import build_definitions, materialize_all, table_rows
from flare_assets_tests.functions_harness import load_problems
from flare_assets_tests.manifests import job, job_of, workflow, write


@pytest.mark.unit
def test_addresses_as_flare_writes_them() -> None:
    a = parse_address("dataos://thirdparty01:none/ny-taxi-data/010100.json?acl=r")
    assert (a.collection, a.dataset, a.is_path) == ("none", "ny-taxi-data/010100.json", True)
    assert a.key == ["thirdparty01", "none", "ny_taxi_data", "010100_json"]
    b = parse_address("dataos://lakehouse:raw-01/ny-taxi.v2?acl=rw")
    assert (b.table, b.identifier, str(b)) == (
        "lakehouse.raw_01.ny_taxi_v2",
        "raw_01.ny_taxi_v2",
        "dataos://lakehouse:raw-01/ny-taxi.v2",
    )
    with pytest.raises(ValueError, match="unknown address parameter 'acl=x'; allowed: acl=r, acl=rw"):
        parse_address("dataos://lakehouse:raw/t?acl=x")
    with pytest.raises(ValueError, match="is not a dataset address"):
        parse_address("dataos://lakehouse:raw01?acl=rw")


def _job(inputs: list[dict], sql: str, output: dict) -> dict:
    return workflow("grammar", job(inputs, [{"name": "result", "sql": sql}], [output]))


@pytest.mark.unit
def test_a_path_on_an_iceberg_depot_is_refused(tmp_path: Path) -> None:
    doc = _job([], "SELECT 1 AS id", {"name": "result", "dataset": "dataos://lakehouse:raw/a/b"})
    from flare_assets_tests.test_manifest_keys import _problems

    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith(
        "outputs[0].dataset: 'a/b' is a path; an iceberg depot's dataset is one table name"
    )


@pytest.mark.unit
def test_schema_registry_keys_are_refused(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, "SELECT 1 AS id", [])
    assert problems == []
    doc = _job(
        [{"name": "src", "dataset": "dataos://landing:raw/x", "format": "json", "schemaSubject": "x-value"}],
        "SELECT * FROM src",
        {"name": "result", "dataset": "dataos://lakehouse:raw/x"},
    )
    from flare_assets_tests.test_manifest_keys import _problems

    (problem,) = _problems(tmp_path, doc)
    assert "schemaSubject and schemaId read a schema registry, which is not supported here" in problem


AVRO = {
    "type": "record",
    "name": "trip",
    "fields": [
        {"name": "trip_id", "type": "long"},
        {"name": "fare", "type": ["null", "double"]},
        {"name": "vendor", "type": "string"},
    ],
}


def test_files_paths_and_avro_schema_from_a_depot(settings: Settings, tmp_path: Path) -> None:
    landing = settings.resolve("landing")
    data = landing / "none" / "ny-taxi-data"
    data.mkdir(parents=True)
    (data / "010100.json").write_text(
        "\n".join(json.dumps({"trip_id": i, "fare": i * 1.5, "vendor": "v-1"}) for i in range(1, 4)) + "\n"
    )
    (data / "other.json").write_text(json.dumps({"trip_id": 99, "fare": 1.0, "vendor": "x"}) + "\n")
    schemas = landing / "none" / "schemas"
    schemas.mkdir(parents=True)
    (schemas / "trip.avsc").write_text(json.dumps(AVRO))
    doc = _job(
        [
            {
                "name": "trips",
                "dataset": "dataos://landing:none/ny-taxi-data/010100.json?acl=r",
                "format": "json",
                "schemaPath": "dataos://landing:none/schemas/trip.avsc",
                "schemaType": "avro",
            }
        ],
        "SELECT * FROM trips",
        {"name": "result", "dataset": "dataos://lakehouse:raw-01/ny-taxi?acl=rw", "format": "Iceberg"},
    )
    write(tmp_path, doc)
    defs = build_definitions(settings, [tmp_path])
    assert materialize_all(defs).success
    table = load_catalog(settings=settings).load_table("raw_01.ny_taxi")
    assert [(f.name, str(f.field_type)) for f in table.schema().fields] == [
        ("trip_id", "long"),
        ("fare", "double"),
        ("vendor", "string"),
    ]
    assert table_rows(settings, "raw_01.ny_taxi") == [(1, 1.5, "v-1"), (2, 3.0, "v-1"), (3, 4.5, "v-1")]


def test_a_job_reads_the_table_it_writes(settings: Settings, tmp_path: Path) -> None:
    from flare_assets.spark import get_session

    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.retail")
    spark.sql("CREATE OR REPLACE TABLE lakehouse.retail.city (id INT, state_code STRING) USING iceberg")
    spark.sql("INSERT INTO lakehouse.retail.city VALUES (1, 'AZ'), (2, 'CA'), (3, 'AZ')")
    doc = _job(
        [{"name": "city_connect", "dataset": "dataos://lakehouse:retail/city", "format": "iceberg"}],
        "SELECT * FROM city_connect WHERE state_code = 'AZ'",
        {"name": "result", "dataset": "dataos://lakehouse:retail/city?acl=rw", "format": "iceberg"},
    )
    write(tmp_path, doc)
    assert materialize_all(build_definitions(settings, [tmp_path])).success
    assert table_rows(settings, "retail.city") == [(1, "AZ"), (3, "AZ")]
    # reading main and writing a branch: main keeps its rows, the branch gets the job's result
    spark.sql("INSERT INTO lakehouse.retail.city VALUES (4, 'CA')")
    job_of(doc)["outputs"][0]["options"] = {"extraOptions": {"branch": "b1"}}
    write(tmp_path, doc)
    assert materialize_all(build_definitions(settings, [tmp_path])).success
    assert table_rows(settings, "retail.city") == [(1, "AZ"), (3, "AZ"), (4, "CA")]
    table = load_catalog(settings=settings).load_table("retail.city")
    b1 = table.scan(snapshot_id=table.snapshot_by_name("b1").snapshot_id).to_arrow()
    assert sorted(b1.column("id").to_pylist()) == [1, 3]


def _stream_doc(streaming: dict, output_options: dict | None = None) -> dict:
    doc = _job(
        [
            {
                "name": "events",
                "dataset": "dataos://landing:raw/events",
                "format": "json",
                "isStream": True,
                "schemaString": "id BIGINT",
            }
        ],
        "SELECT * FROM events",
        {"name": "result", "dataset": "dataos://lakehouse:raw/events", "options": output_options or {}},
    )
    job_of(doc)["streaming"] = streaming
    return doc


@pytest.mark.unit
def test_streaming_keys_as_the_docs_write_them(tmp_path: Path, settings: Settings) -> None:
    from flare_assets.depots import load_depots
    from flare_assets.engine.stream.checkpoints import checkpoint_dir
    from flare_assets.spec.loader import load_jobs
    from flare_assets_tests.conftest import DEMO_DEPOTS

    doc = _stream_doc(
        {"batchMode": True, "triggerMode": "Once", "showPreviewLines": 3},
        {"saveMode": "append", "checkpointLocation": "dataos://lakehouse:checkpoints/events_01"},
    )
    (lj,) = load_jobs([write(tmp_path, doc)], load_depots(DEMO_DEPOTS))
    job = lj.dag_job.job
    assert job.show_preview_lines == 3
    assert (
        checkpoint_dir(job, lj.name, settings)
        == settings.home / "checkpoints/lakehouse/checkpoints/events_01"
    )


def test_streaming_modes_that_cannot_run_here_are_refused(tmp_path: Path) -> None:
    from flare_assets_tests.test_manifest_keys import _problems

    (problem,) = _problems(
        tmp_path, _stream_doc({"triggerMode": "Continuous", "triggerDuration": "1 seconds"})
    )
    assert (
        "triggerMode Continuous: Spark's continuous processing writes only to Kafka, console and memory"
        in problem
    )
    assert "Use ProcessingTime with a short triggerDuration" in problem
    doc = _stream_doc({"batchMode": True, "triggerMode": "ProcessingTime", "triggerDuration": "5 seconds"})
    (problem,) = _problems(tmp_path, doc)
    assert "batchMode true ends the run once the data there is processed" in problem
    doc = _stream_doc({"checkpointLocation": "a"}, {"checkpointLocation": "b"})
    (problem,) = _problems(tmp_path, doc)
    assert "checkpointLocation is given more than once, differently: ['a', 'b']" in problem
