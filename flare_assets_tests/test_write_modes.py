"""Write modes, partition specs and their evolution, schema evolution: run through Dagster, read back
with pyiceberg."""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_assets.catalog import load_catalog
from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import (
    DEMO_DEPOTS,
    build_definitions,
    failure_message,
    materialize_all,
    table_rows,
)
from flare_assets_tests.manifests import job, job_of, workflow, write


def manifest(name: str, sql: str, target: str, options: dict) -> dict:
    return workflow(
        name,
        job(
            inputs=[{"name": "src", "dataset": "dataos://lakehouse:src/events"}],
            steps=[{"name": "result", "sql": sql}],
            outputs=[{"name": "result", "dataset": f"dataos://lakehouse:out/{target}", "options": options}],
        ),
        dag="write",
    )


def run(settings: Settings, folder: Path, doc: dict, ok: bool = True):  # noqa: ANN201
    write(folder, doc, "m")
    result = materialize_all(build_definitions(settings, [folder]), raise_on_error=False)
    assert result.success is ok
    return result


def load_source(settings: Settings, rows: str) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.src")
    spark.sql(
        "CREATE OR REPLACE TABLE lakehouse.src.events (id INT, region STRING, code STRING, ts TIMESTAMP, v INT) "
        "USING iceberg"
    )
    spark.sql(f"INSERT INTO lakehouse.src.events VALUES {rows}")


ROWS = (
    "(1, 'eu', 'CH01', TIMESTAMP '2024-01-01 10:00:00', 10), (2, 'eu', 'DE02', TIMESTAMP '2024-01-02 11:00:00', 20), "
    "(3, 'us', 'NY03', TIMESTAMP '2024-01-01 12:00:00', 30)"
)


def test_partition_spec_transforms_and_names(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    spec = [
        {"type": "identity", "column": "region"},
        {"type": "day", "column": "ts", "name": "ts_day"},
        {"type": "bucket", "column": "id", "numBuckets": 4, "name": "id_bucket"},
        {"type": "truncate", "column": "code", "width": 2, "name": "country"},
    ]
    options = {
        "saveMode": "overwrite",
        "iceberg": {"partitionSpec": spec, "properties": {"write.format.default": "parquet"}},
    }
    result = run(settings, tmp_path, manifest("parts", "SELECT * FROM src", "parts", options))
    table = load_catalog(settings=settings).load_table("out.parts")
    fields = [(f.name, str(f.transform)) for f in table.spec().fields]
    assert fields == [
        ("region", "identity"),
        ("ts_day", "day"),
        ("id_bucket", "bucket[4]"),
        ("country", "truncate[2]"),
    ]
    assert table.properties["write.format.default"] == "parquet"
    files = table.inspect.files().to_pylist()
    assert {f["partition"]["country"] for f in files} == {"CH", "DE", "NY"}
    (mat,) = result.get_asset_materialization_events()
    assert (
        mat.materialization.metadata["partition_spec"].value
        == "region, days(ts), bucket(4, id), truncate(2, code)"
    )


def test_dynamic_overwrite_replaces_only_written_partitions(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    options = {
        "saveMode": "overwrite",
        "extraOptions": {"overwrite-mode": "dynamic"},
        "iceberg": {"partitionSpec": [{"type": "identity", "column": "region"}]},
    }
    run(settings, tmp_path, manifest("dyn", "SELECT id, region, v FROM src", "dyn", options))
    load_source(settings, "(4, 'us', 'X', TIMESTAMP '2024-01-03 00:00:00', 40)")
    result = run(settings, tmp_path, manifest("dyn", "SELECT id, region, v FROM src", "dyn", options))
    assert table_rows(settings, "out.dyn") == [(1, "eu", 10), (2, "eu", 20), (4, "us", 40)]
    (mat,) = result.get_asset_materialization_events()
    assert mat.materialization.metadata["write_mode"].value == "overwrite-dynamic"


def test_merge_update_delete_insert(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    sql = "SELECT id, region, v FROM src"
    run(settings, tmp_path, manifest("mrg", sql, "mrg", {"saveMode": "overwrite"}))
    # id 1 changes (updated when larger), id 2 is flagged for deletion (v < 0), id 5 is new, id 3 is not in the batch
    load_source(
        settings,
        "(1, 'eu', 'CH01', TIMESTAMP '2024-01-01 10:00:00', 15), (2, 'eu', 'DE02', TIMESTAMP '2024-01-02 11:00:00', -1), "
        "(5, 'us', 'LA05', TIMESTAMP '2024-01-05 10:00:00', 50)",
    )
    merge = {
        "onClause": "old.id = new.id",
        "whenClause": "WHEN MATCHED AND new.v < 0 THEN DELETE "
        "WHEN MATCHED AND new.v > old.v THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
    }
    result = run(
        settings,
        tmp_path,
        manifest("mrg", sql, "mrg", {"saveMode": "overwrite", "iceberg": {"merge": merge}}),
    )
    assert table_rows(settings, "out.mrg") == [(1, "eu", 15), (3, "us", 30), (5, "us", 50)]
    (mat,) = result.get_asset_materialization_events()
    assert mat.materialization.metadata["write_mode"].value == "merge"
    # merge directly under options is accepted too
    load_source(settings, "(3, 'us', 'NY03', TIMESTAMP '2024-01-01 12:00:00', 33)")
    run(settings, tmp_path, manifest("mrg", sql, "mrg", {"saveMode": "overwrite", "merge": merge}))
    assert table_rows(settings, "out.mrg") == [(1, "eu", 15), (3, "us", 33), (5, "us", 50)]


def test_partition_evolution_keeps_old_files(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    by_region = {"iceberg": {"partitionSpec": [{"type": "identity", "column": "region"}]}}
    run(settings, tmp_path, manifest("evo", "SELECT * FROM src", "evo", {"saveMode": "append", **by_region}))
    by_month = {"iceberg": {"partitionSpec": [{"type": "month", "column": "ts", "name": "ts_month"}]}}
    result = run(
        settings, tmp_path, manifest("evo", "SELECT * FROM src", "evo", {"saveMode": "append", **by_month})
    )
    table = load_catalog(settings=settings).load_table("out.evo")
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("ts_month", "month")]
    spec_ids = sorted({f["spec_id"] for f in table.inspect.files().to_pylist()})
    assert len(spec_ids) == 2  # old files keep the spec they were written with
    assert len(table_rows(settings, "out.evo")) == 6
    (mat,) = result.get_asset_materialization_events()
    evolution = mat.materialization.metadata["partition_evolution"].value
    assert (
        "DROP PARTITION FIELD region" in evolution
        and "ADD PARTITION FIELD months(ts) AS `ts_month`" in evolution
    )


def test_schema_evolution_adds_columns_and_rejects_incompatible(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    run(settings, tmp_path, manifest("sch", "SELECT id, v FROM src", "sch", {"saveMode": "append"}))
    run(settings, tmp_path, manifest("sch", "SELECT id, v, region FROM src", "sch", {"saveMode": "append"}))
    table = load_catalog(settings=settings).load_table("out.sch")
    assert [f.name for f in table.schema().fields] == ["id", "v", "region"]
    regions = [r["region"] for r in table.scan().to_arrow().to_pylist()]
    assert sorted(map(str, regions)) == ["None", "None", "None", "eu", "eu", "us"]
    before = table.current_snapshot().snapshot_id
    result = run(
        settings,
        tmp_path,
        manifest("sch", "SELECT id, region AS v FROM src", "sch", {"saveMode": "append"}),
        ok=False,
    )
    message = failure_message(result)
    assert "output 'result' (dataos://lakehouse:out/sch) was not written" in message
    assert load_catalog(settings=settings).load_table("out.sch").current_snapshot().snapshot_id == before


@pytest.mark.unit
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {
                "merge": {
                    "onClause": "old.id = new.id OR old.v = new.v",
                    "whenClause": "WHEN MATCHED THEN DELETE",
                }
            },
            "options.merge.onClause: Value error, 'old.id = new.id OR old.v = new.v': OR is not allowed",
        ),
        (
            {"iceberg": {"partitionSpec": [{"type": "weekly", "column": "ts"}]}},
            "options.iceberg.partitionSpec[0].type: got 'weekly'; allowed: identity, year, month, day, hour, bucket, truncate",
        ),
        (
            {"iceberg": {"partitionSpec": [{"type": "bucket", "column": "id"}]}},
            "options.iceberg.partitionSpec[0]: a bucket partition needs numBuckets",
        ),
    ],
)
def test_bad_write_options_are_reported_before_spark(tmp_path: Path, options: dict, expected: str) -> None:
    write(tmp_path, manifest("bad", "SELECT * FROM src", "bad", options), "m")
    with pytest.raises(ManifestError) as info:
        load_jobs([tmp_path], load_depots(DEMO_DEPOTS))
    (problem,) = info.value.problems
    assert expected.replace("Value error, ", "") in problem


def test_bucketed_tables_join_without_a_shuffle(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    bucketed = {
        "saveMode": "overwrite",
        "iceberg": {"partitionSpec": [{"type": "bucket", "column": "id", "numBuckets": 4}]},
    }
    run(settings, tmp_path / "a", manifest("bucket_a", "SELECT id, v FROM src", "bucket_a", bucketed))
    run(settings, tmp_path / "b", manifest("bucket_b", "SELECT id, region FROM src", "bucket_b", bucketed))
    doc = manifest(
        "joined",
        "SELECT a.id, a.v, b.region FROM a JOIN b ON a.id = b.id",
        "joined",
        {"saveMode": "overwrite"},
    )
    stack = doc["workflow"]["dag"][0]["spec"]["stackSpec"]
    stack["sparkConf"] = [{"spark.sql.autoBroadcastJoinThreshold": "-1"}]  # tiny tables would be broadcast
    job_of(doc)["explain"] = True
    job_of(doc)["inputs"] = [
        {"name": "a", "dataset": "dataos://lakehouse:out/bucket_a"},
        {"name": "b", "dataset": "dataos://lakehouse:out/bucket_b"},
    ]
    result = run(settings, tmp_path / "j", doc)
    (mat,) = result.get_asset_materialization_events()
    physical = mat.materialization.metadata["plans"].value.split("== Physical Plan ==")[1]
    assert "SortMergeJoin" in physical and "groupedBy=id_bucket" in physical
    assert "Exchange" not in physical
    assert table_rows(settings, "out.joined") == [(1, 10, "eu"), (2, 20, "eu"), (3, 30, "us")]


def test_write_to_a_branch_leaves_main_alone(settings: Settings, tmp_path: Path) -> None:
    from flare_assets.query import read_rows

    load_source(settings, ROWS)
    run(settings, tmp_path, manifest("br", "SELECT id, v FROM src", "br", {"saveMode": "overwrite"}))
    load_source(settings, "(7, 'eu', 'X', TIMESTAMP '2024-01-07 00:00:00', 70)")
    options = {"saveMode": "append", "extraOptions": {"branch": "audit"}}
    result = run(settings, tmp_path, manifest("br", "SELECT id, v FROM src", "br", options))
    main = sorted(r["id"] for r in read_rows("out.br", settings=settings))
    audit = sorted(r["id"] for r in read_rows("out.br", branch="audit", settings=settings))
    assert main == [1, 2, 3] and audit == [1, 2, 3, 7]
    (mat,) = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    table = load_catalog(settings=settings).load_table("out.br")
    assert meta["branch"].value == "audit"
    assert meta["snapshot_id"].value == str(table.metadata.refs["audit"].snapshot_id)


def test_sort_sets_the_write_order(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    options = {
        "saveMode": "overwrite",
        "sort": {"mode": "global", "columns": [{"name": "region"}, {"name": "v", "order": "desc"}]},
    }
    run(settings, tmp_path, manifest("srt", "SELECT * FROM src", "srt", options))
    order = load_catalog(settings=settings).load_table("out.srt").sort_order()
    assert [(f.direction.value, str(f.transform)) for f in order.fields] == [
        ("asc", "identity"),
        ("desc", "identity"),
    ]


def test_schedules_lineage_and_groups_from_manifests() -> None:
    defs = build_definitions()
    schedules = {s.job.name: s for s in defs.schedules or []}
    assert schedules["retail_job"].cron_schedule == "0 2 * * *"
    # a daily-partitioned job runs each day's partition once the day is over
    assert schedules["incremental__daily_city_orders_partitions"].cron_schedule == "0 0 * * *"
    graph = defs.resolve_asset_graph()
    from dagster import AssetKey

    city = graph.get(AssetKey(["lakehouse", "reporting", "city_revenue"]))
    assert AssetKey(["lakehouse", "retail", "customer_revenue"]) in city.parent_keys
    orders = graph.get(AssetKey(["lakehouse", "retail", "orders_enriched"]))
    assert orders.group_name == "retail" and set(orders.kinds) == {"spark", "iceberg"}
    assert "tier.silver" in orders.tags and orders.owners == ["team:data_engineering"]


def test_columns_the_result_lacks_are_written_as_nulls(settings: Settings, tmp_path: Path) -> None:
    """A column the job stopped producing (or one added by a write whose data never landed) does not
    block later writes: its rows get nulls."""
    load_source(settings, ROWS)
    options = {"saveMode": "append"}
    run(settings, tmp_path, manifest("fill", "SELECT id, region, v FROM src WHERE id = 1", "fill", options))
    run(settings, tmp_path, manifest("fill", "SELECT id, region FROM src WHERE id = 2", "fill", options))
    assert table_rows(settings, "out.fill") == [(1, "eu", 10), (2, "eu", None)]


def test_a_multi_output_job_writes_an_aggregate_in_few_files(settings: Settings, tmp_path: Path) -> None:
    """Held results are cached in spark.sql.shuffle.partitions (200) partitions; the write coalesces
    them instead of making a file of each non-empty one."""
    load_source(settings, ", ".join(f"({i}, 'r{i % 60}', 'C{i}', NULL, {i})" for i in range(600)))
    doc = manifest("agg", "SELECT * FROM src", "agg_rows", {"saveMode": "overwrite"})
    job = job_of(doc)
    job["steps"][0]["sequence"].append(
        {
            "name": "per_region",
            "sql": "SELECT region, count(*) AS n, sum(v) AS total FROM src GROUP BY region",
        }
    )
    job["outputs"].append(
        {
            "name": "per_region",
            "dataset": "dataos://lakehouse:out/agg_per_region",
            "options": {"saveMode": "overwrite"},
        }
    )
    run(settings, tmp_path, doc)
    table = load_catalog(settings=settings).load_table("out.agg_per_region")
    assert len(table.inspect.files()) == 1
    assert [n for _, n, _ in table_rows(settings, "out.agg_per_region")] == [10] * 60


def test_merge_into_a_new_table_creates_it_from_the_whole_result(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    merge = {"onClause": "old.id = new.id", "whenClause": "WHEN MATCHED THEN UPDATE SET *"}
    sql = "SELECT id, region, v FROM src"
    run(settings, tmp_path, manifest("newmrg", sql, "newmrg", {"iceberg": {"merge": merge}}))
    assert table_rows(settings, "out.newmrg") == [(1, "eu", 10), (2, "eu", 20), (3, "us", 30)]
    load_source(settings, "(1, 'eu', 'CH01', TIMESTAMP '2024-01-01 10:00:00', 11), (9, 'us', 'X', NULL, 90)")
    run(settings, tmp_path, manifest("newmrg", sql, "newmrg", {"iceberg": {"merge": merge}}))
    assert table_rows(settings, "out.newmrg") == [(1, "eu", 11), (2, "eu", 20), (3, "us", 30)]


def test_partition_by_on_an_iceberg_output_partitions_by_identity(settings: Settings, tmp_path: Path) -> None:
    load_source(settings, ROWS)
    run(settings, tmp_path, manifest("pby", "SELECT id, region FROM src", "pby", {"partitionBy": ["region"]}))
    table = load_catalog(settings=settings).load_table("out.pby")
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("region", "identity")]
    assert {f["partition"]["region"] for f in table.inspect.files().to_pylist()} == {"eu", "us"}
