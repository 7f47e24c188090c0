"""Data-quality jobs (inputs and assertions, no outputs) as asset checks on the datasets they check,
the format and length metrics, and output assertions shaped like Flare's pre-sink example."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey

from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import DEMO_DEPOTS, build_definitions, materialize_all, shared_spark
from flare_assets_tests.manifests import job, job_of, workflow, write


def quality_manifest(name: str, inputs: list[dict], assertions: list[dict], cron: str | None = None) -> dict:
    doc = workflow(name, job(inputs, assertions=assertions), dag="checks")
    if cron:
        doc["workflow"]["schedule"] = {"cron": cron}
    return doc


def _write(folder: Path, doc: dict, file: str = "m") -> Path:
    write(folder, doc, file)
    return folder


def _problems(folder: Path) -> str:
    with pytest.raises(ManifestError) as err:
        load_jobs([folder], load_depots(DEMO_DEPOTS))
    return "\n".join(err.value.problems)


ORDERS = {"name": "orders", "dataset": "dataos://lakehouse:dq/orders"}
CUSTOMERS = {"name": "customers", "dataset": "dataos://lakehouse:dq/customers"}


# --- the manifest model: no JVM -------------------------------------------------------------------


@pytest.mark.unit
def test_one_input_is_checked_without_naming_it(tmp_path: Path) -> None:
    doc = quality_manifest("dq", [ORDERS], [{"column": "id", "tests": ["missing_count == 0"]}])
    (lj,) = load_jobs([_write(tmp_path, doc)], load_depots(DEMO_DEPOTS))
    assert [a.input for a in lj.dag_job.job.assertions] == ["orders"]


@pytest.mark.unit
def test_an_assertion_names_its_input_by_name_or_by_dataset(tmp_path: Path) -> None:
    doc = quality_manifest(
        "dq",
        [ORDERS, CUSTOMERS],
        [
            {"column": "id", "input": "orders", "tests": ["missing_count == 0"]},
            {"column": "id", "dataset": "dataos://lakehouse:dq/customers?acl=r", "tests": ["count > 0"]},
        ],
    )
    (lj,) = load_jobs([_write(tmp_path, doc)], load_depots(DEMO_DEPOTS))
    assert [a.input for a in lj.dag_job.job.assertions] == ["orders", "customers"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("inputs", "assertion", "expected"),
    [
        (
            [ORDERS, CUSTOMERS],
            {"column": "id", "tests": ["count > 0"]},
            "job: assertions[0]: this data-quality job reads several inputs; name the one checked with "
            "input:; allowed: orders, customers",
        ),
        (
            [ORDERS, CUSTOMERS],
            {"column": "id", "input": "order", "tests": ["count > 0"]},
            "assertions[0].input 'order' is not an input of the job; allowed: orders, customers",
        ),
        (
            [ORDERS],
            {"column": "id", "output": "orders", "tests": ["count > 0"]},
            "assertions[0].output 'orders': this job has no outputs; name the input it checks with input:",
        ),
        (
            [ORDERS],
            {"column": "id", "tests": ["invalid_count == 0"]},
            "'invalid_count == 0': invalid_count needs validFormat: {regex: ...} on the assertion",
        ),
        (
            [ORDERS],
            {"sql": "SELECT 1 AS n", "validFormat": {"regex": "x"}, "tests": ["n == 1"]},
            "validFormat goes with column; test the format in the sql instead",
        ),
        (
            [ORDERS],
            {"column": "id", "validFormat": {"regex": "(open"}, "tests": ["invalid_count == 0"]},
            "'(open' is not a regular expression",
        ),
        (
            [ORDERS],
            {"column": "id", "validFormat": {"pattern": "x"}, "tests": ["invalid_count == 0"]},
            "validFormat.pattern: unknown key; allowed: regex",
        ),
        (
            [{**ORDERS, "incrementalRead": {}}],
            {"column": "id", "tests": ["count > 0"]},
            "inputs[0]: a data-quality job checks the dataset as it is",
        ),
    ],
)
def test_ambiguous_or_wrong_quality_assertions_are_refused_at_load(
    tmp_path: Path, inputs: list, assertion: dict, expected: str
) -> None:
    doc = quality_manifest("dq", inputs, [assertion])
    problems = _problems(_write(tmp_path, doc))
    assert f"{tmp_path / 'm.yaml'}: workflow.dag[0].spec.stackSpec.job" in problems
    assert expected in problems


@pytest.mark.unit
def test_steps_in_a_quality_job_are_refused(tmp_path: Path) -> None:
    doc = quality_manifest("dq", [ORDERS], [{"column": "id", "tests": ["count > 0"]}])
    job_of(doc)["steps"] = [{"sequence": [{"name": "s", "sql": "SELECT * FROM orders"}]}]
    assert "steps go with outputs" in _problems(_write(tmp_path, doc))


@pytest.mark.unit
def test_a_check_name_taken_by_the_writer_is_refused(tmp_path: Path) -> None:
    output = {
        "name": "raw",
        "dataset": "dataos://lakehouse:dq/orders",
        "assertions": [{"name": "ids", "column": "id", "tests": ["count > 0"]}],
    }
    writer = workflow(
        "writer", job([{"name": "raw", "dataset": "dataos://landing:dq/raw"}], outputs=[output]), dag="w"
    )
    _write(tmp_path, writer, "writer")
    doc = quality_manifest("dq", [ORDERS], [{"name": "ids", "column": "id", "tests": ["missing_count == 0"]}])
    problems = _problems(_write(tmp_path, doc, "dq"))
    assert (
        f"{tmp_path / 'dq.yaml'}: workflow.dag[0].spec.stackSpec.job.assertions[0]: check 'ids' on "
        in problems
    )
    assert (
        f"is also defined by {tmp_path / 'writer.yaml'}: workflow.dag[0].spec.stackSpec.job.outputs[0]"
        in problems
    )


# --- running the checks ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables(settings: Settings) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.dq")
    spark.sql(
        "CREATE OR REPLACE TABLE lakehouse.dq.orders (id INT, brand STRING, amount DOUBLE, email STRING) "
        "USING iceberg"
    )
    spark.sql(
        """INSERT INTO lakehouse.dq.orders VALUES
        (1, 'Awkward Styles', 1200.0, 'a@x.org'),
        (2, 'Awkward Styles', 800.0, 'b@x.org'),
        (3, 'Urbane', 300.0, 'not-an-email'),
        (4, 'Urbane', NULL, NULL),
        (5, 'Nautica''s', 50.0, 'e@x.org')"""
    )
    spark.sql("CREATE OR REPLACE TABLE lakehouse.dq.customers (id INT, name STRING) USING iceberg")
    spark.sql("INSERT INTO lakehouse.dq.customers VALUES (1, 'ann'), (2, 'bo'), (3, NULL)")


def _run_checks(settings: Settings, folder: Path, job_name: str, ok: bool = True) -> dict:
    defs = build_definitions(settings, [folder])
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(resources={"spark": shared_spark()}, raise_on_error=False)
    assert result.success is ok
    return {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}


def test_a_quality_job_checks_a_source_dataset_on_its_schedule(
    settings: Settings, tables: None, tmp_path: Path
) -> None:
    doc = quality_manifest(
        "orders-quality",
        [ORDERS],
        [
            {"column": "amount", "tests": ["avg > 400", "max < 1000", "missing_count == 1", "sum > 2000"]},
            {"column": "amount", "filter": "brand == 'Urbane'", "tests": ["distinct_count == 1"]},
            {
                "name": "emails",
                "column": "email",
                "validFormat": {"regex": "^[^@ ]+@[^@ ]+$"},
                "tests": ["invalid_count < 1", "invalid_percentage <= 20"],
            },
            {
                "name": "brand_shape",
                "column": "brand",
                "validFormat": {"regex": "Awkward"},
                "tests": ["invalid_count == 3", "min_length >= 6", "max_length == 14", "avg_length > 9"],
            },
            {
                "name": "big_awkward",
                "sql": "SELECT max(amount) AS top, count(*) AS n FROM orders WHERE brand = 'Awkward Styles'",
                "tests": ["top == 1200", "n == 2"],
            },
            {"name": "as_source", "sql": "SELECT count(*) AS n FROM source", "tests": ["n == 5"]},
        ],
        cron="0 6 * * *",
    )
    folder = _write(tmp_path, doc)
    defs = build_definitions(settings, [folder])
    key = AssetKey(["lakehouse", "dq", "orders"])
    graph = defs.resolve_asset_graph()
    assert key in graph.external_asset_keys  # no manifest writes it: a source asset
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == key}
    assert checks == {"amount_0", "amount_1", "emails", "brand_shape", "big_awkward", "as_source"}
    schedule = defs.resolve_schedule_def("orders_quality_checks_job_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.job_name == "orders_quality_checks_job"

    found = _run_checks(settings, folder, "orders_quality_checks_job")
    assert set(found) == {(key, c) for c in checks}
    amount = found[(key, "amount_0")]
    assert not amount.passed
    assert amount.metadata["avg"].value == pytest.approx(587.5)
    assert amount.metadata["max"].value == 1200.0 and amount.metadata["sum"].value == 2350.0
    assert amount.metadata["failed_tests"].value == "max < 1000"
    assert found[(key, "amount_1")].passed
    assert found[(key, "amount_1")].metadata["distinct_count"].value == 1.0
    emails = found[(key, "emails")]
    assert not emails.passed  # 'not-an-email' is the one invalid value; the null is missing, not invalid
    assert emails.metadata["invalid_count"].value == 1.0
    assert emails.metadata["invalid_percentage"].value == 20.0
    assert emails.metadata["failed_tests"].value == "invalid_count < 1"
    brand = found[(key, "brand_shape")]
    assert brand.passed, brand.metadata
    assert brand.metadata["invalid_count"].value == 3.0 and brand.metadata["max_length"].value == 14.0
    assert found[(key, "big_awkward")].passed and found[(key, "big_awkward")].metadata["top"].value == 1200.0
    assert found[(key, "as_source")].passed


def test_a_check_on_a_written_dataset_attaches_to_its_asset(
    settings: Settings, tables: None, tmp_path: Path
) -> None:
    output = {
        "name": "copied",
        "dataset": "dataos://lakehouse:dq/customers_copy",
        "options": {"saveMode": "overwrite"},
        "assertions": [{"column": "id", "tests": ["count == 3"]}],
    }
    steps = [{"name": "copied", "sql": "SELECT * FROM customers"}]
    writer = workflow("dq-writer", job([CUSTOMERS], steps, [output]), dag="copy")
    _write(tmp_path, writer, "writer")
    doc = quality_manifest(
        "copy-quality",
        [{"name": "copy", "dataset": "dataos://lakehouse:dq/customers_copy"}, ORDERS],
        [
            {"input": "copy", "column": "name", "tests": ["missing_count == 0"], "blocking": True},
            {
                "input": "copy",
                "name": "matches_orders",
                "sql": "SELECT count(*) AS n FROM copy JOIN orders USING (id)",
                "tests": ["n == 3"],
            },
            {"input": "orders", "column": "id", "tests": ["duplicate_count == 0"]},
        ],
    )
    _write(tmp_path, doc, "quality")
    defs = build_definitions(settings, [tmp_path])
    copy = AssetKey(["lakehouse", "dq", "customers_copy"])
    assert copy in defs.resolve_asset_graph().materializable_asset_keys
    assert "copy_quality_checks_job" in {j.name for j in defs.resolve_all_job_defs()}
    # materializing the asset runs the checks on it: its writer's and the data-quality job's
    run = materialize_all(defs, selection=[copy], raise_on_error=False)
    after = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
    assert after == {"id_0": True, "name_0": False, "matches_orders": True}
    assert not run.success  # name_0 is blocking
    assert [e.asset_key for e in run.get_asset_materialization_events()] == [copy]

    # the blocking check fails, so the run fails; every check is still evaluated and recorded
    found = _run_checks(settings, tmp_path, "copy_quality_checks_job", ok=False)
    assert set(found) == {
        (copy, "name_0"),
        (copy, "matches_orders"),
        (AssetKey(["lakehouse", "dq", "orders"]), "id_0"),
    }
    assert not found[(copy, "name_0")].passed
    assert found[(copy, "name_0")].metadata["missing_count"].value == 1.0
    assert found[(copy, "matches_orders")].passed
    assert found[(AssetKey(["lakehouse", "dq", "orders"]), "id_0")].passed
    # the writer's own check and the data-quality job's checks live side by side on the asset
    keys = defs.resolve_asset_graph().asset_check_keys
    assert {AssetCheckKey(copy, "id_0"), AssetCheckKey(copy, "name_0")} <= keys


def test_presink_assertions_on_outputs_sharing_one_view(
    settings: Settings, flare_home: Path, tmp_path: Path
) -> None:
    """Flare's pre-sink example: one step written to three file outputs, the last one checked."""
    landing = flare_home / "landing" / "geo" / "city"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "cities.csv").write_text(
        "city_name,zip_code,state_code\nPrattville,36066,AL\nMobile,36601,AL\nAtlanta,30301,GA\n"
    )
    step = "SELECT *, date_format(now(), 'yyyyMMddHHmm') AS version FROM city_input"
    outputs = [
        {
            "name": "cities",
            "dataset": f"dataos://staging:geo/cities_{fmt}?acl=rw",
            "format": fmt,
            "options": {"saveMode": "overwrite", "partitionBy": ["version"]},
        }
        for fmt in ("csv", "json", "parquet")
    ]
    outputs[-1]["assertions"] = [
        {"column": "zip_code", "tests": ["max < 40000", "distinct_count == 3", "missing_percentage < 0.5"]},
        {"column": "zip_code", "filter": "state_code == 'AL'", "tests": ["avg > 36000"]},
        {"column": "city_name", "validFormat": {"regex": "ville$"}, "tests": ["invalid_count == 2"]},
        {
            "sql": "SELECT max(zip_code) AS max_zip FROM cities WHERE state_code = 'AL'",
            "tests": ["max_zip == 36601"],
        },
    ]
    city_input = {
        "name": "city_input",
        "dataset": "dataos://landing:geo/city",
        "format": "csv",
        "schemaString": "city_name STRING, zip_code INT, state_code STRING",
    }
    doc = workflow("presink", job([city_input], [{"name": "cities", "sql": step}], outputs), dag="cities")
    defs = build_definitions(settings, [_write(tmp_path, doc)])
    keys = [AssetKey(["staging", "geo", f"cities_{fmt}"]) for fmt in ("csv", "json", "parquet")]
    result = materialize_all(defs)
    assert result.success
    written = {e.asset_key for e in result.get_asset_materialization_events()}
    assert written == set(keys)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {e.asset_key for e in checks.values()} == {keys[-1]}
    assert all(e.passed for e in checks.values()), {n: e.metadata for n, e in checks.items()}
    assert checks["city_name_2"].metadata["invalid_count"].value == 2.0
    spark = get_session(settings)
    for fmt in ("csv", "json", "parquet"):
        folder = flare_home / "staging" / "geo" / f"cities_{fmt}"
        rows = spark.read.format(fmt).option("header", "true").load(str(folder)).collect()
        assert sorted(r["city_name"] for r in rows) == ["Atlanta", "Mobile", "Prattville"]
