"""Partitioned assets: each run replaces exactly its slice; single-run backfills; replay; bad keys."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import build_definitions, failure_message, shared_spark, table_rows
from flare_assets_tests.manifests import job, job_of, workflow, write


def manifest(name: str, dims: list[dict], sql: str, **partitions: object) -> dict:
    block = job(
        inputs=[{"name": "sales", "dataset": "dataos://lakehouse:src/sales"}],
        steps=[{"name": "totals", "sql": sql}],
        outputs=[{"name": "totals", "dataset": f"dataos://lakehouse:out/{name.replace('-', '_')}"}],
        partitions={"dimensions": dims, **partitions},
    )
    return workflow(name, block, dag="daily")


DAILY = [{"name": "day", "type": "daily", "column": "day", "start": "2024-01-01", "timezone": "UTC"}]
BY_DAY = (
    "SELECT day, sum(amount) AS total, count(*) AS n FROM sales "
    "WHERE day >= date'$|day_start|' AND day < date'$|day_end|' GROUP BY day"
)


def load_sales(settings: Settings, rows: str) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.src")
    spark.sql("CREATE OR REPLACE TABLE lakehouse.src.sales (day DATE, unit STRING, amount INT) USING iceberg")
    spark.sql(f"INSERT INTO lakehouse.src.sales VALUES {rows}")


def defs_for(settings: Settings, folder: Path, doc: dict):  # noqa: ANN201
    write(folder, doc, "m")
    return build_definitions(settings, [folder])


def run(defs, instance: DagsterInstance | None = None, ok: bool = True, **kwargs: object):  # noqa: ANN001, ANN201
    result = materialize(
        list(defs.assets or []),
        resources={"spark": shared_spark()},
        raise_on_error=False,
        instance=instance,
        **kwargs,  # type: ignore[arg-type]
    )
    assert result.success is ok, failure_message(result) if ok else "the run should have failed"
    return result


def files_by_day(settings: Settings, table: str) -> dict[str, set[str]]:
    files = load_catalog(settings=settings).load_table(table).inspect.files().to_pylist()
    out: dict[str, set[str]] = {}
    for f in files:
        out.setdefault(str(f["partition"]["day_day"]), set()).add(f["file_path"])
    return out


RANGE = {
    "dagster/asset_partition_range_start": "2024-01-01",
    "dagster/asset_partition_range_end": "2024-01-03",
}


def test_backfill_in_one_run_then_replay_one_day_changes_only_that_day(
    settings: Settings, tmp_path: Path
) -> None:
    from datetime import date

    load_sales(
        settings,
        "(date'2024-01-01', 'a', 1), (date'2024-01-02', 'a', 2), (date'2024-01-02', 'b', 3), "
        "(date'2024-01-03', 'a', 4), (date'2024-01-04', 'a', 100)",
    )
    defs = defs_for(settings, tmp_path, manifest("daily-totals", DAILY, BY_DAY))
    result = run(defs, tags=RANGE)
    table = load_catalog(settings=settings).load_table("out.daily_totals")
    assert len(table.snapshots()) == 1  # three partitions, one run, one commit
    assert table_rows(settings, "out.daily_totals") == [
        (date(2024, 1, 1), 1, 1),
        (date(2024, 1, 2), 5, 2),
        (date(2024, 1, 3), 4, 1),
    ]
    mats = result.get_asset_materialization_events()
    assert sorted(m.materialization.partition for m in mats) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert mats[0].materialization.metadata["partition_slice"].value == "day=2024-01-01..2024-01-03"
    before = files_by_day(settings, "out.daily_totals")

    # the source changes for day 2; replaying day 2 changes day 2 and nothing else
    get_session(settings).sql(
        "UPDATE lakehouse.src.sales SET amount = amount * 10 WHERE day = date'2024-01-02'"
    )
    run(defs, partition_key="2024-01-02")
    assert table_rows(settings, "out.daily_totals") == [
        (date(2024, 1, 1), 1, 1),
        (date(2024, 1, 2), 50, 2),
        (date(2024, 1, 3), 4, 1),
    ]
    after = files_by_day(settings, "out.daily_totals")
    days = sorted(before)
    assert after[days[0]] == before[days[0]] and after[days[2]] == before[days[2]]
    assert after[days[1]] != before[days[1]]

    # an empty input clears its slice instead of leaving stale rows
    get_session(settings).sql("DELETE FROM lakehouse.src.sales WHERE day = date'2024-01-03'")
    run(defs, partition_key="2024-01-03")
    assert [r[0].day for r in table_rows(settings, "out.daily_totals")] == [1, 2]
    # a replay of the same partition gives the same table
    again = table_rows(settings, "out.daily_totals")
    run(defs, partition_key="2024-01-02")
    assert table_rows(settings, "out.daily_totals") == again


def test_rows_outside_the_slice_fail_and_nothing_is_written(settings: Settings, tmp_path: Path) -> None:
    load_sales(settings, "(date'2024-01-01', 'a', 1), (date'2024-01-02', 'a', 2)")
    sql = "SELECT day, sum(amount) AS total, count(*) AS n FROM sales GROUP BY day"
    defs = defs_for(settings, tmp_path, manifest("leaky", DAILY, sql))
    result = run(defs, ok=False, partition_key="2024-01-01")
    assert "rows outside partition day=2024-01-01" in failure_message(result)
    assert not load_catalog(settings=settings).table_exists("out.leaky") or not table_rows(
        settings, "out.leaky"
    )


def test_two_dimensions_and_dynamic_keys_are_checked(settings: Settings, tmp_path: Path) -> None:
    from datetime import date

    load_sales(settings, "(date'2024-01-01', 'a', 1), (date'2024-01-01', 'b', 2), (date'2024-01-02', 'a', 3)")
    dims = [*DAILY, {"name": "unit", "type": "dynamic", "column": "unit"}]
    sql = (
        "SELECT day, unit, sum(amount) AS total FROM sales WHERE day >= date'$|day_start|' "
        "AND day < date'$|day_end|' AND unit IN ($|unit_in|) GROUP BY day, unit"
    )
    defs = defs_for(settings, tmp_path, manifest("by-unit", dims, sql))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("unit", ["a", "b", "x' OR '1'='1"])
    from dagster import MultiPartitionKey

    run(defs, instance, partition_key=MultiPartitionKey({"day": "2024-01-01", "unit": "a"}))
    run(defs, instance, partition_key=MultiPartitionKey({"day": "2024-01-01", "unit": "b"}))
    assert table_rows(settings, "out.by_unit") == [(date(2024, 1, 1), "a", 1), (date(2024, 1, 1), "b", 2)]
    bad = run(
        defs,
        instance,
        ok=False,
        partition_key=MultiPartitionKey({"day": "2024-01-01", "unit": "x' OR '1'='1"}),
    )
    assert "partition key \"x' OR '1'='1\" is not allowed" in failure_message(bad)
    assert len(table_rows(settings, "out.by_unit")) == 2


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"timezone": "Mars/Olympus"}, "'Mars/Olympus' is not a time zone"),
        ({"start": None}, "a daily dimension needs start"),
        ({"type": "weekly"}, "got 'weekly'; allowed: hourly, daily, monthly, static, dynamic"),
    ],
)
def test_bad_partitions_are_reported_at_load(tmp_path: Path, change: dict, expected: str) -> None:
    dims = [{**DAILY[0], **change}]
    path = write(tmp_path, manifest("bad", dims, BY_DAY), "m")
    with pytest.raises(ManifestError) as err:
        load_jobs([path])
    text = str(err.value)
    assert str(path) in text and "partitions.dimensions[0]" in text and expected in text


@pytest.mark.unit
def test_placeholder_without_key_and_append_are_reported_at_load(tmp_path: Path) -> None:
    doc = manifest("bad", DAILY, BY_DAY.replace("$|day_end|", "$|dya_end|"))
    job_of(doc)["outputs"][0]["options"] = {"saveMode": "append"}
    path = write(tmp_path, doc, "m")
    with pytest.raises(ManifestError) as err:
        load_jobs([path])
    text = str(err.value)
    assert "steps[0].sequence[0].sql: $|dya_end| is no key; allowed: day, day_end, day_in, day_start" in text
    assert "outputs[0].options.saveMode: a partitioned job replaces its slice" in text


def test_flare_partitions_adds_checked_dynamic_keys(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    pipelines = tmp_path / "pipelines"
    dims = [*DAILY, {"name": "unit", "type": "dynamic", "column": "unit"}]
    sql = "SELECT day, unit FROM sales WHERE day >= date'$|day_start|' AND unit IN ($|unit_in|)"
    write(pipelines, manifest("units", dims, sql), "m")
    env = {
        **os.environ,
        "FLARE_HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "FLARE_PIPELINES": str(pipelines),
    }
    cmd = [sys.executable, "-m", "flare_assets.cli", "partitions"]
    ok = subprocess.run([*cmd, "unit", "rp01", "rp02"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "unit: 2 key(s): rp01, rp02" in ok.stdout
    bad = subprocess.run([*cmd, "unit", "x' OR '1'='1"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "partition key \"x' OR '1'='1\" is not allowed" in bad.stderr
    unknown = subprocess.run([*cmd, "units", "rp03"], env=env, capture_output=True, text=True)
    assert unknown.returncode == 2
    assert f"'units' is no dynamic partition dimension of the manifests in {pipelines}" in unknown.stderr
    assert "allowed: unit" in unknown.stderr


def load_problems(tmp_path: Path, doc: dict) -> str:
    path = write(tmp_path, doc, "m")
    with pytest.raises(ManifestError) as err:
        load_jobs([path])
    return str(err.value).replace(str(path) + ": ", "")


def with_spec(doc: dict, spec: list[dict]) -> dict:
    job_of(doc)["outputs"][0]["options"] = {
        "saveMode": "overwrite",
        "iceberg": {"partitionSpec": spec},
    }
    return doc


JOB = "workflow.dag[0].spec.stackSpec.job"


@pytest.mark.unit
def test_incremental_inputs_in_a_partitioned_job_are_refused(tmp_path: Path) -> None:
    doc = manifest("inc-parts", DAILY, BY_DAY)
    job = job_of(doc)
    job["inputs"][0]["incrementalRead"] = {}
    text = load_problems(tmp_path, doc)
    assert f"{JOB}.inputs[0].incrementalRead: a partitioned job cannot read incrementally" in text
    assert "state covers the whole table" in text


@pytest.mark.unit
@pytest.mark.parametrize(
    ("dims", "spec", "expected"),
    [
        (
            DAILY,
            [{"type": "month", "column": "day"}],
            f"{JOB}.outputs[0].options.iceberg.partitionSpec: partitions 'day' by months(day), coarser than "
            "the daily slices of dimension 'day'",
        ),
        (
            DAILY,
            [{"type": "bucket", "column": "day", "numBuckets": 4}],
            "partitions 'day' by bucket(4, day), coarser than the daily slices",
        ),
        (
            [{**DAILY[0], "timezone": "America/New_York"}],
            None,  # the default layout, days(day), cut at UTC midnight
            f"{JOB}.partitions.dimensions[0].timezone: daily slices in America/New_York do not line up with "
            "days(day), which Iceberg cuts at UTC boundaries",
        ),
        (
            [
                {
                    "name": "h",
                    "type": "hourly",
                    "column": "ts",
                    "start": "2024-01-01-00:00",
                    "timezone": "Asia/Kolkata",
                }
            ],
            None,
            "hourly slices in Asia/Kolkata do not line up with hours(ts)",
        ),
        (
            [*DAILY, {"name": "unit", "type": "dynamic", "column": "unit"}],
            [{"type": "day", "column": "day"}, {"type": "truncate", "column": "unit", "width": 1}],
            "partitions 'unit' by truncate(1, unit), which does not keep the keys of dynamic dimension 'unit' "
            "in files of their own",
        ),
    ],
)
def test_partition_layouts_that_cut_across_slices_are_refused(
    tmp_path: Path, dims: list[dict], spec: list[dict] | None, expected: str
) -> None:
    doc = manifest("layout", dims, BY_DAY.replace("day_", f"{dims[0]['name']}_"))
    text = load_problems(tmp_path, with_spec(doc, spec) if spec else doc)
    assert expected in text


@pytest.mark.unit
def test_partition_layouts_that_line_up_with_slices_load(tmp_path: Path) -> None:
    new_york = [{**DAILY[0], "timezone": "America/New_York"}]
    hourly = [
        {
            "name": "h",
            "type": "hourly",
            "column": "ts",
            "start": "2024-01-01-00:00",
            "timezone": "Europe/Berlin",
        }
    ]
    cases = [
        manifest("a", DAILY, BY_DAY),
        with_spec(manifest("b", DAILY, BY_DAY), [{"type": "identity", "column": "day"}]),
        with_spec(manifest("c", new_york, BY_DAY), [{"type": "identity", "column": "day"}]),
        manifest("d", hourly, "SELECT ts FROM sales WHERE ts >= '$|h_start|' AND ts < '$|h_end|'"),
        with_spec(
            manifest("e", DAILY, BY_DAY),
            [{"type": "day", "column": "day"}, {"type": "bucket", "column": "n", "numBuckets": 2}],
        ),
    ]
    for n, doc in enumerate(cases):
        write(tmp_path, doc, str(n))
    assert len(load_jobs([tmp_path])) == len(cases)


def test_a_slice_iceberg_cannot_replace_fails_at_once(settings: Settings) -> None:
    """Iceberg's "some, but not all, rows match filter" is no commit conflict: no retries."""
    import time

    from pyspark.sql import functions as F

    from flare_assets.engine.tables import iceberg
    from flare_assets.spec.model import Output

    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.out")
    spark.sql(
        "CREATE OR REPLACE TABLE lakehouse.out.coarse (day DATE, n INT) USING iceberg PARTITIONED BY (months(day))"
    )
    spark.sql("INSERT INTO lakehouse.out.coarse VALUES (date'2024-01-01', 1), (date'2024-01-02', 2)")
    output = Output.model_validate({"name": "coarse", "dataset": "dataos://lakehouse:out/coarse"})
    day = spark.sql("SELECT date'2024-01-01' AS day, 10 AS n")
    started = time.perf_counter()
    with pytest.raises(Exception, match="some, but not all, rows match filter"):
        iceberg.write(spark, day, output, slice_condition=F.col("day") == F.lit("2024-01-01").cast("date"))
    assert time.perf_counter() - started < 10  # eight attempts with back-off took about 40 s
    assert table_rows(settings, "out.coarse") == [(date(2024, 1, 1), 1), (date(2024, 1, 2), 2)]


def test_a_reversed_or_empty_range_fails_before_spark_with_a_clear_message(
    settings: Settings, tmp_path: Path
) -> None:
    defs = defs_for(settings, tmp_path, manifest("reversed", DAILY, BY_DAY))
    tags = {
        "dagster/asset_partition_range_start": "2024-01-10",
        "dagster/asset_partition_range_end": "2024-01-05",
    }
    result = run(defs, ok=False, tags=tags)
    message = failure_message(result)
    assert (
        "partition range 2024-01-10...2024-01-05 holds no partition: the range is reversed or empty"
        in message
    )
    assert "IndexError" not in message
    assert not load_catalog(settings=settings).table_exists("out.reversed")


def test_each_partition_reports_its_own_rows_and_a_backfill_names_empty_ones(
    settings: Settings, tmp_path: Path
) -> None:
    sales = [(date(2024, 1, 1), "a", 1), (date(2024, 1, 1), "b", 2), (date(2024, 1, 3), "a", 4)]
    sales += [(date(2024, 1, 9), "a", 100)]  # outside the backfill: in the table, never in the metadata
    load_sales(settings, ", ".join(f"(date'{d}', '{u}', {a})" for d, u, a in sales))
    sql = "SELECT day, unit, amount FROM sales WHERE day >= date'$|day_start|' AND day < date'$|day_end|'"
    defs = defs_for(settings, tmp_path, manifest("per-day", DAILY, sql))
    run(defs, partition_key="2024-01-09")
    result = run(defs, tags=RANGE)
    by_day: dict[str, list[tuple]] = {}
    for d, u, a in sales:
        by_day.setdefault(str(d), []).append((d, u, a))
    assert table_rows(settings, "out.per_day") == sorted(sales)  # the recompute
    mats = {
        m.materialization.partition: m.materialization.metadata
        for m in result.get_asset_materialization_events()
    }
    assert sorted(mats) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    for day, meta in mats.items():
        expected = by_day.get(day, [])
        assert meta["rows_written"].value == meta["dagster/row_count"].value == len(expected)
        assert meta["partition_empty"].value is (not expected)
        preview = meta["preview"].value
        assert all(str(d) in preview for d, _, _ in expected)
        assert all(other not in preview for other in by_day if other != day)
        assert meta["empty_partitions"].value == "2024-01-02"  # the run's own note, on every partition
        assert meta["table_rows"].value == len(sales)


def test_a_local_day_layout_replays_exactly_in_a_non_utc_zone(settings: Settings, tmp_path: Path) -> None:
    """The layout validate suggests for daily slices in New York (identity on a local-date column)."""
    sales = [(date(2024, 1, 1), "a", 1), (date(2024, 1, 2), "a", 2), (date(2024, 1, 2), "b", 3)]
    load_sales(settings, ", ".join(f"(date'{d}', '{u}', {a})" for d, u, a in sales))
    dims = [{**DAILY[0], "timezone": "America/New_York"}]
    doc = with_spec(manifest("ny-days", dims, BY_DAY), [{"type": "identity", "column": "day"}])
    defs = defs_for(settings, tmp_path, doc)
    run(defs, tags={**RANGE, "dagster/asset_partition_range_end": "2024-01-02"})
    get_session(settings).sql(
        "UPDATE lakehouse.src.sales SET amount = amount * 10 WHERE day = date'2024-01-02'"
    )
    run(defs, partition_key="2024-01-02")
    totals: dict[date, list[int]] = {}
    for d, _, a in sales:
        totals.setdefault(d, []).append(a * (10 if d == date(2024, 1, 2) else 1))
    assert table_rows(settings, "out.ny_days") == sorted((d, sum(v), len(v)) for d, v in totals.items())
