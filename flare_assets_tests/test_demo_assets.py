"""The demo manifests materialized through Dagster; tables read back with pyiceberg, no Spark."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import AssetKey

from flare_assets.catalog import load_catalog
from flare_assets.demo.data import generate
from flare_assets.settings import Settings
from flare_assets_tests.conftest import build_definitions, failure_message, materialize_all
from flare_assets_tests.manifests import job, workflow, write


@pytest.fixture(scope="module")
def demo_run(settings: Settings):  # noqa: ANN201
    generate(settings.resolve("landing"))
    result = materialize_all(build_definitions(settings))
    assert result.success
    return result


def _raw_orders(settings: Settings) -> list[dict]:
    path = settings.resolve("landing") / "retail" / "orders" / "orders-0001.json"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_tables_read_back_with_pyiceberg(demo_run, settings: Settings) -> None:  # noqa: ANN001
    catalog = load_catalog(settings=settings)
    orders = catalog.load_table("retail.orders_enriched").scan().to_arrow()
    raw = _raw_orders(settings)
    assert orders.num_rows == len(raw) == 2000
    assert sorted(orders.column("order_id").to_pylist()) == sorted(r["order_id"] for r in raw)

    revenue = catalog.load_table("retail.customer_revenue").scan().to_arrow().to_pylist()
    expected: dict[int, Decimal] = {}
    for r in raw:
        if r["status"] != "cancelled":
            amount = Decimal(r["quantity"]) * Decimal(str(r["unit_price"])).quantize(Decimal("0.01"))
            expected[r["customer_id"]] = expected.get(r["customer_id"], Decimal(0)) + amount
    assert {r["customer_id"]: r["revenue"] for r in revenue} == expected

    cities = catalog.load_table("reporting.city_revenue").scan().to_arrow().to_pylist()
    assert sum(c["revenue"] for c in cities) == sum(expected.values())


def test_materialization_metadata_matches_the_table(demo_run, settings: Settings) -> None:  # noqa: ANN001
    catalog = load_catalog(settings=settings)
    table = catalog.load_table("retail.orders_enriched")
    (mat,) = [
        m
        for m in demo_run.get_asset_materialization_events()
        if m.asset_key == AssetKey(["lakehouse", "retail", "orders_enriched"])
    ]
    meta = mat.materialization.metadata
    assert meta["snapshot_id"].value == str(table.current_snapshot().snapshot_id)
    assert meta["dagster/row_count"].value == 2000
    assert meta["added_records"].value == 2000
    assert meta["write_mode"].value == "overwrite"
    assert "JOIN customers" in meta["sql"].value
    columns = {c.name: c for c in meta["dagster/column_schema"].value.columns}
    assert columns["amount"].type == "decimal(12,2)" and columns["order_ts"].type == "timestamp"
    assert columns["customer_name"].tags == {"PII.Name": ""}
    assert columns["amount"].tags == columns["unit_price"].tags == {"finance": ""}
    assert columns["order_id"].tags == {}
    # stored on the table too, for every engine
    assert table.properties["flare.column-tags.customer_name"] == "PII.Name"
    assert table.properties["flare.column-tags.amount"] == "finance"


def test_overwrite_replaces_and_append_adds(
    demo_run, settings: Settings, tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001
    pipelines = tmp_path / "pipelines"
    top = job(
        [{"name": "src", "dataset": "dataos://lakehouse:retail/customer_revenue"}],
        [{"name": "top", "sql": "SELECT customer_id, revenue FROM src WHERE revenue > 0"}],
        [{"name": "top", "dataset": "dataos://lakehouse:copies/appended", "options": {"saveMode": "append"}}],
    )
    write(pipelines, workflow("copy", top, dag="copy"))
    defs = build_definitions(settings, [pipelines])
    for _ in range(2):
        assert materialize_all(defs).success
    table = load_catalog(settings=settings).load_table("copies.appended")
    source_rows = (
        load_catalog(settings=settings).load_table("retail.customer_revenue").scan().to_arrow().num_rows
    )
    assert table.scan().to_arrow().num_rows == 2 * source_rows
    assert len(table.snapshots()) == 2

    first = (
        load_catalog(settings=settings).load_table("retail.orders_enriched").current_snapshot().snapshot_id
    )
    assert materialize_all(build_definitions(settings), selection="lakehouse/retail/orders_enriched").success
    table = load_catalog(settings=settings).load_table("retail.orders_enriched")
    assert table.current_snapshot().snapshot_id != first
    assert table.scan().to_arrow().num_rows == 2000  # replaced, not doubled


def test_failing_step_is_named_and_table_keeps_its_snapshot(
    demo_run, settings: Settings, tmp_path: Path
) -> None:  # noqa: ANN001
    before = (
        load_catalog(settings=settings).load_table("reporting.city_revenue").current_snapshot().snapshot_id
    )
    broken = (Path(__file__).parent.parent / "flare_assets/demo/pipelines/reporting.yaml").read_text()
    (tmp_path / "reporting.yaml").write_text(broken.replace("GROUP BY city", "GROUP BY no_such_column"))
    result = materialize_all(build_definitions(settings, [tmp_path]), raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "reporting/city-revenue: step 'city_revenue' failed" in message
    assert "no_such_column" in message
    after = (
        load_catalog(settings=settings).load_table("reporting.city_revenue").current_snapshot().snapshot_id
    )
    assert after == before


def test_flare_query_reads_committed_rows(demo_run, settings: Settings) -> None:  # noqa: ANN001
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "flare_assets.cli",
            "query",
            "reporting.city_revenue",
            "--format",
            "json",
            "--limit",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 3 and set(rows[0]) == {"city", "customers", "orders", "revenue"}
    table = load_catalog(settings=settings).load_table("reporting.city_revenue")
    first = table.snapshots()[0].snapshot_id
    older = subprocess.run(
        [
            sys.executable,
            "-m",
            "flare_assets.cli",
            "query",
            "lakehouse.reporting.city_revenue",
            "--snapshot",
            str(first),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "city" in older.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "query", "reporting.city_revenue", "--branch", "nope"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "no branch or tag named 'nope'" in missing.stderr


def test_one_session_per_run_stopped_at_teardown(demo_run, settings: Settings) -> None:  # noqa: ANN001
    from dagster import materialize

    from flare_assets import spark as sparklib
    from flare_assets.defs.resources import SparkResource

    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    plain = [k for k in graph.materializable_asset_keys if graph.get(k).partitions_def is None]
    result = materialize(list(defs.assets or []), resources={"spark": SparkResource()}, selection=plain)
    apps = {
        m.materialization.metadata["spark_app_id"].value for m in result.get_asset_materialization_events()
    }
    assert len(apps) == 1  # both jobs' steps ran on the run's one session
    assert sparklib._root is None  # and the resource stopped it when the run ended


def test_assertions_are_asset_checks_with_measured_values(demo_run) -> None:  # noqa: ANN001
    checks = {(e.asset_key.path[-1], e.check_name): e for e in demo_run.get_asset_check_evaluations()}
    assert set(checks) == {
        ("orders_enriched", "order_id_unique"),
        ("orders_enriched", "amount_1"),
        # the retail-quality data-quality job's checks, run after the asset they check
        ("orders_enriched", "order_volume"),
        ("orders_enriched", "status_known"),
        ("orders_enriched", "customer_named"),
        ("orders_enriched", "amount_matches_lines"),
        ("customer_directory", "customer_id_unique"),
        ("customer_revenue", "revenue_positive"),
        ("daily_sales", "revenue_positive"),
        ("daily_sales", "one_row_per_day_and_city"),
    }
    assert all(e.passed for e in checks.values())
    unique = checks[("orders_enriched", "order_id_unique")]
    assert unique.passed and unique.severity.value == "ERROR"
    assert unique.metadata["duplicate_count"].value == 0.0 and unique.metadata["missing_count"].value == 0.0
    amount = checks[("orders_enriched", "amount_1")]
    assert amount.passed and amount.metadata["min"].value > 0 and amount.severity.value == "WARN"
    assert checks[("customer_revenue", "revenue_positive")].metadata["customers"].value == 200.0
    status = checks[("orders_enriched", "status_known")]
    assert (
        status.metadata["invalid_count"].value == 0.0 and status.metadata["invalid_percentage"].value == 0.0
    )
    volume = checks[("orders_enriched", "order_volume")]
    assert volume.metadata["row_count"].value == 2000.0 and volume.metadata["max"].value == 5.0
    assert checks[("orders_enriched", "amount_matches_lines")].metadata["mismatched"].value == 0.0


def test_the_quality_job_runs_alone_on_its_schedule(demo_run, settings: Settings) -> None:  # noqa: ANN001
    from flare_assets_tests.conftest import shared_spark

    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("retail_quality_checks_job_schedule")
    assert (schedule.cron_schedule, schedule.job_name) == ("0 4 * * *", "retail_quality_checks_job")
    job = defs.resolve_job_def("retail_quality_checks_job")
    result = job.execute_in_process(resources={"spark": shared_spark()})
    assert result.success and not result.get_asset_materialization_events()  # checks only, no writes
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"order_volume", "status_known", "customer_named", "amount_matches_lines"}
    assert all(e.passed for e in checks.values())
    assert checks["customer_named"].metadata["min_length"].value >= 3


def test_directory_is_shaped_by_functions(demo_run, settings: Settings) -> None:  # noqa: ANN001
    import csv
    import hashlib

    path = settings.resolve("landing") / "retail" / "customers" / "customers.csv"
    raw = {int(r["customer_id"]): r for r in csv.DictReader(path.open())}
    table = load_catalog(settings=settings).load_table("retail.customer_directory")
    rows = table.scan().to_arrow().to_pylist()
    assert [f.name for f in table.schema().fields] == [
        "customer_id",
        "full_name",
        "city",
        "segment",
        "signup_date",
        "signup_year",
        "source",
    ]
    assert len(rows) == len(raw)
    for row in rows:
        source = raw[row["customer_id"]]
        assert row["full_name"] == hashlib.sha256(source["name"].encode()).hexdigest()
        assert row["city"] == source["city"].upper()
        assert row["signup_date"].isoformat() == source["signup_date"]
        assert row["signup_year"] == source["signup_date"][:4] and row["source"] == "landing"
    (mat,) = [
        m
        for m in demo_run.get_asset_materialization_events()
        if m.asset_key == AssetKey(["lakehouse", "retail", "customer_directory"])
    ]
    functions = mat.materialization.metadata["functions"].value
    assert "set_type, rename, change_case, cut_character, hash, add_column" in functions
