"""Assertions as asset checks: measured values, failures, blocking, errors named."""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import DEMO_DEPOTS, build_definitions, materialize_all
from flare_assets_tests.manifests import job_of, write
from flare_assets_tests.test_write_modes import manifest


def _run(settings: Settings, folder: Path, output_assertions: list, job_assertions: list | None = None):  # noqa: ANN202
    doc = manifest("chk", "SELECT * FROM src", "chk", {"saveMode": "overwrite"})
    job = job_of(doc)
    job["outputs"][0]["assertions"] = output_assertions
    if job_assertions:
        job["assertions"] = job_assertions
    write(folder, doc, "m")
    result = materialize_all(build_definitions(settings, [folder]), raise_on_error=False)
    return result, {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module", autouse=True)
def source(settings: Settings) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.src")
    spark.sql("CREATE OR REPLACE TABLE lakehouse.src.events (id INT, region STRING, v INT) USING iceberg")
    spark.sql(
        "INSERT INTO lakehouse.src.events VALUES (1, 'eu', 10), (2, 'eu', NULL), (2, 'us', 30), (4, NULL, 40)"
    )


def test_failing_and_erroring_checks_report_what_they_measured(settings: Settings, tmp_path: Path) -> None:
    result, checks = _run(
        settings,
        tmp_path,
        [
            {"column": "id", "tests": ["duplicate_count == 0", "distinct_count == 3"]},
            {"column": "v", "filter": "region = 'eu'", "tests": ["missing_percentage <= 10", "max == 10"]},
            {"name": "broken_sql", "sql": "SELECT count(*) AS n FROM no_such_view", "tests": ["n > 0"]},
        ],
        [{"name": "total", "sql": "SELECT sum(v) AS total FROM source", "tests": ["total == 80"]}],
    )
    assert result.success  # none of them is blocking
    assert not checks["id_0"].passed
    assert checks["id_0"].metadata["duplicate_count"].value == 1.0
    assert checks["id_0"].metadata["distinct_count"].value == 3.0
    assert checks["id_0"].metadata["failed_tests"].value == "duplicate_count == 0"
    assert not checks["v_1"].passed and checks["v_1"].metadata["missing_percentage"].value == 50.0
    assert checks["v_1"].metadata["failed_tests"].value == "missing_percentage <= 10"
    assert not checks["broken_sql"].passed and "no_such_view" in checks["broken_sql"].metadata["error"].value
    assert checks["total"].passed and checks["total"].metadata["total"].value == 80.0


def test_blocking_check_failure_fails_the_run(settings: Settings, tmp_path: Path) -> None:
    result, checks = _run(
        settings,
        tmp_path,
        [{"name": "ids", "column": "id", "tests": ["duplicate_count == 0"], "blocking": True}],
    )
    assert not checks["ids"].passed and checks["ids"].severity.value == "ERROR"
    assert not result.success


@pytest.mark.parametrize(
    ("assertion", "expected"),
    [
        ({"column": "id", "tests": ["median < 3"]}, "unknown metric 'median'; allowed: avg, min, max"),
        ({"column": "id", "tests": ["avg is small"]}, "'avg is small': a test reads 'metric op number'"),
        ({"column": "id", "sql": "SELECT 1 AS x", "tests": ["x > 0"]}, "an assertion has either column"),
    ],
)
def test_bad_assertions_are_reported_at_load(tmp_path: Path, assertion: dict, expected: str) -> None:
    doc = manifest("chk", "SELECT * FROM src", "chk", {"saveMode": "overwrite"})
    job_of(doc)["outputs"][0]["assertions"] = [assertion]
    write(tmp_path, doc, "m")
    with pytest.raises(ManifestError) as info:
        load_jobs([tmp_path], load_depots(DEMO_DEPOTS))
    (problem,) = info.value.problems
    assert "job.outputs[0].assertions[0]" in problem and expected in problem


def test_column_assertions_share_one_query_with_their_own_filters(settings: Settings) -> None:
    from flare_assets.engine.batch.assertions import evaluate, evaluate_all
    from flare_assets.spec.model import Assertion

    spark = get_session(settings)
    data = spark.table("lakehouse.src.events")
    tests = ["duplicate_count == 0", "missing_percentage < 10", "row_count > 1", "distinct_count >= 1"]
    named = [
        (
            "two_ids",
            Assertion.model_validate(
                {"column": "id", "filter": "v IS NULL OR region = 'us'", "tests": tests}
            ),
        ),
        ("v_all", Assertion.model_validate({"column": "v", "tests": ["missing_count == 0", "sum > 0"]})),
        ("bad", Assertion.model_validate({"column": "v", "filter": "nope = 1", "tests": ["min > 0"]})),
    ]
    alone = {n: evaluate(spark, data, a, n) for n, a in named}
    together = {r.name: r for r in evaluate_all(spark, data, named[:2])}
    assert together["two_ids"].measured == alone["two_ids"].measured
    assert together["two_ids"].measured == {
        "duplicate_count": 1.0,
        "missing_percentage": 0.0,
        "row_count": 2.0,
        "distinct_count": 1.0,
    }
    assert together["v_all"].measured == {"missing_count": 1.0, "sum": 80.0} == alone["v_all"].measured
    # a failing filter falls back to one query each: the error is that assertion's alone
    fallback = {r.name: r for r in evaluate_all(spark, data, named)}
    assert fallback["v_all"].measured == alone["v_all"].measured and fallback["v_all"].error is None
    assert "nope" in (fallback["bad"].error or "")


def _two_outputs(settings: Settings, folder: Path, save_mode: str, name: str, more: tuple = ()) -> dict:
    """A job writing `<name>_all` and `<name>_eu` (save_mode) with column assertions on the first;
    returns its check evaluations by name."""
    doc = manifest(name, "SELECT * FROM src", f"{name}_all", {"saveMode": save_mode})
    job = job_of(doc)
    job["steps"][0]["sequence"].append({"name": "eu", "sql": "SELECT * FROM src WHERE region = 'eu'"})
    job["outputs"][0]["assertions"] = [
        {"name": "ids", "column": "id", "tests": ["row_count == 4", "duplicate_count == 1"]},
        {"name": "eu_v", "column": "v", "filter": "region = 'eu'", "tests": ["missing_count == 1"]},
        *more,
    ]
    job["outputs"].append(
        {"name": "eu", "dataset": f"dataos://lakehouse:out/{name}_eu", "options": {"saveMode": save_mode}}
    )
    write(folder, doc, "m")
    result = materialize_all(build_definitions(settings, [folder]), raise_on_error=False)
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_checks_of_a_multi_output_job_measure_what_the_table_holds(
    settings: Settings, tmp_path: Path
) -> None:
    """An overwrite is measured while the held result is computed; an append is measured on the
    table, which holds earlier runs' rows too; a table with a column the result lacks likewise."""
    checks = _two_outputs(settings, tmp_path / "a", "overwrite", "multi_ow")
    assert checks["ids"].passed and checks["ids"].metadata["duplicate_count"].value == 1.0
    assert checks["eu_v"].passed and checks["eu_v"].metadata["missing_count"].value == 1.0
    checks = _two_outputs(settings, tmp_path / "a", "overwrite", "multi_ow")  # replaces, still 4 rows
    assert checks["ids"].passed and checks["ids"].metadata["row_count"].value == 4.0

    _two_outputs(settings, tmp_path / "b", "append", "multi_ap")
    checks = _two_outputs(settings, tmp_path / "b", "append", "multi_ap")
    assert not checks["ids"].passed
    assert checks["ids"].metadata["row_count"].value == 8.0
    assert checks["ids"].metadata["duplicate_count"].value == 5.0

    spark = get_session(settings)
    spark.sql(
        "CREATE OR REPLACE TABLE lakehouse.out.multi_wide_all (id INT, region STRING, v INT, note STRING) USING iceberg"
    )
    notes = {"name": "notes", "column": "note", "tests": ["missing_count == 4"]}
    checks = _two_outputs(settings, tmp_path / "c", "overwrite", "multi_wide", (notes,))
    assert checks["ids"].passed and checks["ids"].metadata["row_count"].value == 4.0
    assert checks["notes"].passed, checks["notes"].metadata
    assert spark.table("lakehouse.out.multi_wide_all").where("note IS NULL").count() == 4
