"""Structure functions: argument checks and Avro schemas without a JVM, then every function on real
rows through one Dagster run writing one Iceberg table per case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from flare_assets.settings import Settings
from flare_assets.spec.avro import AvroSchemaError, avro_to_spark
from flare_assets.spec.functions import Function
from flare_assets_tests.functions_harness import load_problems, run_cases, run_failure

FUNCTIONS = TypeAdapter(list[Function])
SALES = (
    "SELECT * FROM VALUES ('p1', 'USA', 1.5D), ('p1', 'India', 2.0D), ('p1', 'USA', 3.0D),"
    " ('p2', 'Mexico', 4.0D) AS t(Product, Country, Amount)"
)
ORDER_AVRO = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long", "doc": "order number"},
        {"name": "note", "type": ["null", "string"]},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": ["null", "int"]}},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "DONE"]}},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
        {
            "name": "ship",
            "type": {"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]},
        },
        {"name": "bill", "type": ["null", "Address"]},
        {"name": "n", "type": ["int", "long"]},
        {"name": "either", "type": ["string", "int"]},
    ],
}


def one(function: dict[str, Any]) -> Any:
    (model,) = FUNCTIONS.validate_python([function])
    return model


# ---- argument checks and schemas (no JVM) ----


def test_avro_record_becomes_a_spark_struct() -> None:
    fields = {f["name"]: (f["type"], f["nullable"]) for f in avro_to_spark(json.dumps(ORDER_AVRO))["fields"]}
    address = {
        "type": "struct",
        "fields": [{"name": "city", "type": "string", "nullable": False, "metadata": {}}],
    }
    assert fields == {
        "id": ("long", False),
        "note": ("string", True),
        "day": ("date", False),
        "at": ("timestamp", False),
        "price": ("decimal(10,2)", False),
        "tags": ({"type": "array", "elementType": "string", "containsNull": False}, False),
        "attrs": (
            {"type": "map", "keyType": "string", "valueType": "integer", "valueContainsNull": True},
            False,
        ),
        "status": ("string", False),
        "hash": ("binary", False),
        "ship": (address, False),
        "bill": (address, True),
        "n": ("long", False),
        "either": (
            {
                "type": "struct",
                "fields": [
                    {"name": "member0", "type": "string", "nullable": True, "metadata": {}},
                    {"name": "member1", "type": "integer", "nullable": True, "metadata": {}},
                ],
            },
            False,
        ),
    }
    assert avro_to_spark(ORDER_AVRO)["fields"][0]["metadata"] == {"comment": "order number"}


def test_avro_schema_round_trips_through_pyspark_types() -> None:
    from pyspark.sql.types import StructType

    struct = StructType.fromJson(avro_to_spark(ORDER_AVRO))
    assert struct["price"].dataType.simpleString() == "decimal(10,2)"
    assert struct["attrs"].dataType.simpleString() == "map<string,int>"


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ('{"type": "string"}', "must be a record"),
        ("{not json", "not JSON"),
        (
            {"type": "record", "name": "r", "fields": [{"name": "x", "type": "Nope"}]},
            "unknown Avro type 'Nope'",
        ),
        (
            {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]},
            "contains itself",
        ),
        (
            {
                "type": "record",
                "name": "r",
                "fields": [
                    {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 40}}
                ],
            },
            "precision",
        ),
    ],
)
def test_bad_avro_schemas_are_refused(schema: Any, message: str) -> None:
    with pytest.raises(AvroSchemaError, match=message):
        avro_to_spark(schema)


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ({"name": "parse_as_json", "column": "j"}, "exactly one of sparkSchema"),
        (
            {"name": "parse_as_json", "column": "j", "sparkSchema": "a INT", "avroSchema": ORDER_AVRO},
            "exactly one",
        ),
        ({"name": "parse_as_json", "column": "j", "sparkSchema": '{"type": "array"}'}, "must be a struct"),
        ({"name": "parse_as_json", "column": "j", "avroSchema": '{"type": "int"}'}, "must be a record"),
        (
            {
                "name": "pivot",
                "groupBy": ["a"],
                "column": "b",
                "aggregateExpression": "avg(x) as x",
                "approach": "two-phase",
            },
            "sum, min or max",
        ),
        (
            {"name": "pivot", "groupBy": ["a"], "column": "b", "aggregateExpression": "sum(x"},
            "not a Spark SQL",
        ),
        ({"name": "pivot", "groupBy": [], "column": "b", "aggregateExpression": "sum(x)"}, "at least 1"),
        (
            {
                "name": "unpivot",
                "columns": "*",
                "pivotColumns": ["*"],
                "keyColumnName": "k",
                "valueColumnName": "v",
            },
            "cannot both",
        ),
        ({"name": "unfurl", "expression": "a.*, b.*"}, "one expression"),
        ({"name": "flatten", "column": "a", "outer": True}, "Extra inputs"),
    ],
)
def test_bad_structure_arguments_are_refused(function: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        one(function)


@pytest.mark.unit
def test_columns_after_structure_functions() -> None:
    pivot = {
        "name": "pivot",
        "groupBy": ["product"],
        "column": "Country",
        "aggregateExpression": "sum(Amount) as Amount",
    }
    assert one(pivot).columns_after(["Product", "Country", "Amount"]) is None
    assert one(pivot).reads() == ["product", "Country", "Amount"]
    listed = one({**pivot, "values": ["USA", "India"]})
    assert listed.columns_after(["Product", "Country", "Amount"]) == ["Product", "USA", "India"]
    both = one({**pivot, "values": ["USA"], "aggregateExpression": "sum(Amount) as s, max(Amount) as m"})
    assert both.columns_after(["Product", "Country", "Amount"]) == ["Product", "USA_s", "USA_m"]
    unpivot = {
        "name": "unpivot",
        "columns": "*",
        "pivotColumns": ["b", "c"],
        "keyColumnName": "k",
        "valueColumnName": "v",
    }
    assert one(unpivot).columns_after(["a", "b", "c"]) == ["a", "k", "v"]
    kept = one({**unpivot, "columns": ["a"], "pivotColumns": "*"})
    assert kept.columns_after(["a", "b", "c"]) == ["a", "k", "v"]
    assert kept.problems(["a"]) == ["unpivot: no columns left to unpivot once a are kept"]
    explode = one({"name": "unfurl", "expression": "explode(discount) as discount01"})
    assert explode.reads() == ["discount"]
    assert explode.columns_after(["discount"]) == ["discount", "discount01"]
    assert one({"name": "unfurl", "expression": "col02.*"}).columns_after(["col02"]) is None
    assert one({"name": "unfurl", "expression": "transform(a, x -> x + 1) as b"}).reads() == ["a"]
    assert one({"name": "flatten_outer", "column": "a"}).columns_after(["a"]) == ["a"]
    assert one({"name": "drop_duplicates"}).reads() == []


# ---- data (one Dagster run for the module) ----

DISCOUNTS = (
    "SELECT 1 AS id, array(named_struct('discount_amount', 5L, 'discount_type', 'a'),"
    " named_struct('discount_amount', 7L, 'discount_type', 'b')) AS discount,"
    " named_struct('id', 9, 'city', 'Pune') AS col02"
)
ARRAYS = "SELECT * FROM VALUES (1, array(1, 2)), (2, array()), (3, NULL) AS t(id, a)"
CASES = {
    "drop_duplicates_docs": (
        "SELECT * FROM VALUES ('Baltimore', 1), ('Baltimore', 2), ('Baltimore', 3), ('Chicago', 4),"
        " (NULL, 5), (NULL, 6) AS t(CITY, n)",
        [{"name": "drop_duplicates", "columns": ["CITY"]}],
    ),
    "drop_duplicates_all": (
        "SELECT * FROM VALUES (1, 'a'), (1, 'a'), (1, 'b') AS t(n, s)",
        [{"name": "drop_duplicates"}],
    ),
    "flatten_docs": (DISCOUNTS, [{"name": "flatten", "column": "discount", "asColumn": "discounts"}]),
    "flatten_inner": (ARRAYS, [{"name": "flatten", "column": "a"}]),
    "flatten_outer": (ARRAYS, [{"name": "flatten_outer", "column": "a", "asColumn": "x"}]),
    "parse_as_json": (
        'SELECT * FROM VALUES (\'{"id": 7, "note": "hi", "tags": ["p", "q"], "ship": {"city": "Pune"}}\'),'
        " ('not json') AS t(j)",
        [
            {
                "name": "parse_as_json",
                "column": "j",
                "asColumn": "avro",
                "avroSchema": json.dumps(
                    {
                        "type": "record",
                        "name": "r",
                        "fields": [
                            {"name": "id", "type": "long"},
                            {"name": "tags", "type": {"type": "array", "items": "string"}},
                            {
                                "name": "ship",
                                "type": [
                                    "null",
                                    {
                                        "type": "record",
                                        "name": "A",
                                        "fields": [{"name": "city", "type": "string"}],
                                    },
                                ],
                            },
                        ],
                    }
                ),
            },
            {"name": "parse_as_json", "column": "j", "asColumn": "ddl", "sparkSchema": "id INT, note STRING"},
            {
                "name": "parse_as_json",
                "column": "j",
                "sparkSchema": json.dumps(
                    {
                        "type": "struct",
                        "fields": [{"name": "note", "type": "string", "nullable": True, "metadata": {}}],
                    }
                ),
            },
        ],
    ),
    "pivot_values_two_phase": (
        SALES,
        [
            {
                "name": "pivot",
                "groupBy": ["Product", "Country"],
                "column": "Country",
                "values": ["USA", "Mexico", "India"],
                "aggregateExpression": "sum(Amount) as Amount",
                "approach": "two-phase",
            }
        ],
    ),
    "pivot_all_values": (
        SALES,
        [
            {
                "name": "pivot",
                "groupBy": ["Product"],
                "column": "Country",
                "aggregateExpression": "sum(Amount) as Amount",
            }
        ],
    ),
    "unfurl_docs": (
        DISCOUNTS,
        [
            {"name": "unfurl", "expression": "explode(discount) as discount01"},
            {"name": "unfurl", "expression": "col02.*"},
            {"name": "drop", "columns": ["discount"]},
        ],
    ),
    "unpivot_docs": (
        "SELECT * FROM VALUES ('7500 Security Blvd', 'MD', 1, 2.5D), (NULL, NULL, NULL, NULL)"
        " AS t(ADDRESS, STATE_HEADQUARTERED, Mexico, India)",
        [
            {
                "name": "unpivot",
                "columns": ["ADDRESS", "STATE_HEADQUARTERED"],
                "pivotColumns": "*",
                "keyColumnName": "CITY",
                "valueColumnName": "Revenue",
            }
        ],
    ),
    "unpivot_star_columns": (
        "SELECT * FROM VALUES ('a', 1, 2) AS t(k, x, y)",
        [
            {
                "name": "unpivot",
                "columns": "*",
                "pivotColumns": ["x", "y"],
                "keyColumnName": "name",
                "valueColumnName": "v",
            }
        ],
    ),
}


@pytest.fixture(scope="module")
def rows(settings: Settings, flare_home: Path) -> dict[str, list[dict]]:
    return run_cases(settings, flare_home / "pipelines", CASES, name="structure")


def test_drop_duplicates_docs_example(rows: dict[str, list[dict]]) -> None:
    cities = sorted((r["CITY"] or "") for r in rows["drop_duplicates_docs"])
    assert cities == ["", "Baltimore", "Chicago"]
    assert sorted((r["n"], r["s"]) for r in rows["drop_duplicates_all"]) == [(1, "a"), (1, "b")]


def test_flatten_docs_example(rows: dict[str, list[dict]]) -> None:
    got = rows["flatten_docs"]
    assert sorted(r["discounts"]["discount_amount"] for r in got) == [5, 7]
    assert all(len(r["discount"]) == 2 and r["id"] == 1 for r in got)


def test_flatten_drops_empty_arrays_and_flatten_outer_keeps_them(rows: dict[str, list[dict]]) -> None:
    assert sorted((r["id"], r["a"]) for r in rows["flatten_inner"]) == [(1, 1), (1, 2)]
    outer = sorted((r["id"], r["x"]) for r in rows["flatten_outer"])
    assert outer == [(1, 1), (1, 2), (2, None), (3, None)]


def test_parse_as_json_with_avro_ddl_and_spark_json(rows: dict[str, list[dict]]) -> None:
    got = {r["ddl"]["id"] if r["ddl"] else None: r for r in rows["parse_as_json"]}
    good, bad = got[7], got[None]
    assert good["avro"] == {"id": 7, "tags": ["p", "q"], "ship": {"city": "Pune"}}
    assert good["ddl"] == {"id": 7, "note": "hi"}
    assert good["j"] == {"note": "hi"}
    assert (bad["avro"], bad["ddl"], bad["j"]) == (None, None, None)


def test_pivot_with_values_two_phase(rows: dict[str, list[dict]]) -> None:
    got = sorted(rows["pivot_values_two_phase"], key=lambda r: (r["Product"], r["Country"]))
    assert got == [
        {"Product": "p1", "Country": "India", "USA": None, "Mexico": None, "India": 2.0},
        {"Product": "p1", "Country": "USA", "USA": 4.5, "Mexico": None, "India": None},
        {"Product": "p2", "Country": "Mexico", "USA": None, "Mexico": 4.0, "India": None},
    ]


def test_pivot_without_values_takes_every_value(rows: dict[str, list[dict]]) -> None:
    got = sorted(rows["pivot_all_values"], key=lambda r: r["Product"])
    assert got == [
        {"Product": "p1", "India": 2.0, "Mexico": None, "USA": 4.5},
        {"Product": "p2", "India": None, "Mexico": 4.0, "USA": None},
    ]


def test_unfurl_docs_example(rows: dict[str, list[dict]]) -> None:
    got = sorted(rows["unfurl_docs"], key=lambda r: r["discount01"]["discount_amount"])
    assert [list(r) for r in got][0] == ["id", "col02", "discount01", "city"]
    assert [(r["id"], r["discount01"]["discount_type"], r["city"]) for r in got] == [
        (9, "a", "Pune"),
        (9, "b", "Pune"),
    ]


def test_unpivot_docs_example(rows: dict[str, list[dict]]) -> None:
    got = sorted(rows["unpivot_docs"], key=lambda r: (r["ADDRESS"] or "", r["CITY"]))
    assert got == [
        {"ADDRESS": None, "STATE_HEADQUARTERED": None, "CITY": "India", "Revenue": None},
        {"ADDRESS": None, "STATE_HEADQUARTERED": None, "CITY": "Mexico", "Revenue": None},
        {"ADDRESS": "7500 Security Blvd", "STATE_HEADQUARTERED": "MD", "CITY": "India", "Revenue": 2.5},
        {"ADDRESS": "7500 Security Blvd", "STATE_HEADQUARTERED": "MD", "CITY": "Mexico", "Revenue": 1.0},
    ]
    star = sorted((r["k"], r["name"], r["v"]) for r in rows["unpivot_star_columns"])
    assert star == [("a", "x", 1), ("a", "y", 2)]


@pytest.mark.unit
def test_missing_columns_are_named_at_load(tmp_path: Path) -> None:
    pivot = {"name": "pivot", "groupBy": ["a"], "column": "b", "aggregateExpression": "sum(Amount) as Amount"}
    problems = load_problems(tmp_path, "SELECT 1 AS a, 'x' AS b", [pivot])
    assert any("functions[0]" in p and "no column 'Amount'" in p for p in problems), problems
    unfurl = {"name": "unfurl", "expression": "explode(items) as item"}
    assert any("no column 'items'" in p for p in load_problems(tmp_path, "SELECT 1 AS a", [unfurl]))


def test_unpivot_of_mixed_types_fails_naming_the_types(settings: Settings, flare_home: Path) -> None:
    unpivot = {
        "name": "unpivot",
        "columns": ["k"],
        "pivotColumns": "*",
        "keyColumnName": "n",
        "valueColumnName": "v",
    }
    message = run_failure(settings, flare_home / "failing", "SELECT 'a' AS k, 1 AS x, 'y' AS s", [unpivot])
    assert "no common type (x int, s string)" in message
