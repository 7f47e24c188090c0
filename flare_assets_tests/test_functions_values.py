"""Value functions: argument errors reported without Spark; every function run on data through one
Dagster run and read back with pyiceberg."""

from __future__ import annotations

import hashlib
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from flare_assets.settings import Settings
from flare_assets.spec.functions import Function, FunctionSpec
from flare_assets_tests.functions_harness import load_problems, run_cases, run_failure

FUNCTIONS = TypeAdapter(list[Function])


def parsed(*functions: dict) -> list[FunctionSpec]:
    return FUNCTIONS.validate_python(list(functions))


def errors(function: dict) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parsed(function)
    return [f"{'.'.join(str(p) for p in e['loc'][2:])}: {e['msg']}" for e in info.value.errors()]


# --- arguments, no JVM ---------------------------------------------------------------------------


@pytest.mark.unit
def test_spellings_of_enum_arguments_are_accepted() -> None:
    (title, upper) = parsed(
        {"name": "change_case", "case": "Titlecase", "column": "a"},
        {"name": "change_case", "case": "UPPER", "column": "a"},
    )
    assert (title.case, upper.case) == ("title", "upper")
    (sha1, sha256, md5) = parsed(
        {"name": "hash", "column": "a", "algo": "sha1"},
        {"name": "hash", "column": "a", "algo": "sha-256"},
        {"name": "Hash", "column": "a", "algo": "MD5"},
    )
    assert (sha1.algo, sha256.algo, md5.algo) == ("SHA-1", "SHA-256", "MD5")
    (decode, trim) = parsed(
        {"name": "decode", "algo": "BASE32", "column": "a"},
        {"name": "trim", "column": "a"},
    )
    assert (decode.algo, decode.as_column, trim.method) == ("base32", None, "trim")


@pytest.mark.unit
def test_unknown_argument_is_an_error() -> None:
    assert errors({"name": "trim", "column": "a", "mode": "ltrim"})[-1].startswith("mode: Extra inputs")


@pytest.mark.unit
def test_wrong_types_are_errors() -> None:
    assert errors({"name": "cut_character", "column": "a", "startIndex": "one", "endIndex": 4})[0].startswith(
        "startIndex: Input should be a valid integer"
    )
    assert errors({"name": "merge", "separator": " ", "columns": "a", "asColumn": "b"})[0].startswith(
        "columns: Input should be a valid list"
    )
    assert errors({"name": "merge", "separator": " ", "columns": ["a"], "asColumn": "b"})[0].startswith(
        "columns: List should have at least 2 items"
    )


@pytest.mark.unit
def test_bad_algorithms_and_cases_are_errors() -> None:
    assert errors({"name": "hash", "column": "a", "algo": "SHA-3"})[0].startswith(
        "algo: Input should be 'MD5'"
    )
    assert errors({"name": "hash", "column": "a"}) == ["algo: Field required"]
    assert errors({"name": "encode", "column": "a", "algo": "base58"})[0].startswith(
        "algo: Input should be 'base32', 'base64' or 'hex'"
    )
    assert errors({"name": "change_case", "column": "a", "case": "camel"})[0].startswith(
        "case: Input should be"
    )
    assert errors({"name": "trim", "column": "a", "method": "strip"})[0].startswith("method: Input should be")


def test_bad_ranges_types_and_expressions_are_errors() -> None:
    assert (
        "endIndex 2 is before startIndex 4"
        in errors({"name": "cut_character", "column": "a", "startIndex": 4, "endIndex": 2})[0]
    )
    assert errors({"name": "cut_character", "column": "a", "startIndex": 0, "endIndex": 2})[0].startswith(
        "startIndex: Input should be greater than or equal to 1"
    )
    assert "'weekly' is not a Spark type" in errors({"name": "set_type", "columns": {"a": "weekly"}})[0]
    assert (
        "is not a Spark SQL expression"
        in errors({"name": "set_variable", "column": "a", "expression": "ROUND(x,"})[0]
    )
    assert (
        "is not a sed expression"
        in errors({"name": "find_and_replace", "column": "a", "sedExpression": "y/a/b/"})[0]
    )
    assert (
        "the regex does not compile"
        in errors({"name": "find_and_replace", "column": "a", "sedExpression": "s/(a/b/"})[0]
    )


@pytest.mark.unit
def test_fill_values_are_text() -> None:
    (fill,) = parsed({"name": "fill_null_or_empty", "columns": {"a": 0, "b": True, "c": "x"}})
    assert fill.columns == {"a": "0", "b": "true", "c": "x"}
    assert errors({"name": "fill_null_or_empty", "columns": {}})[0].startswith(
        "columns: Dictionary should have"
    )


@pytest.mark.unit
def test_first_match_only_without_the_g_flag() -> None:
    (first, every, loud) = parsed(
        {"name": "find_and_replace", "column": "a", "sedExpression": r"s/([a-z])([0-9])/<\2\1>/"},
        {"name": "find_and_replace", "column": "a", "sedExpression": r"s/([a-z])([0-9])/<\2\1>/g"},
        {"name": "find_and_replace", "column": "a", "sedExpression": "s/a/[&]/i"},
    )
    assert first.java() == ("^((?s:.*?))(([a-z])([0-9]))", "$1<$4$3>")
    assert every.java() == ("([a-z])([0-9])", "<$2$1>")
    assert loud.java() == ("(?i)^((?s:.*?))(a)", "$1[$2]")


@pytest.mark.unit
def test_aggregates_of_set_variable_are_found() -> None:
    (row, total, mixed, window) = parsed(
        {"name": "set_variable", "column": "v", "expression": "ROUND(x, 0)"},
        {"name": "set_variable", "column": "v", "expression": "ROUND(AVG(x), 2)"},
        {"name": "set_variable", "column": "v", "expression": "x - MAX(x)"},
        {"name": "set_variable", "column": "v", "expression": "SUM(x) OVER ()"},
    )
    assert row.aggregates("_a") == ([], "ROUND(x, 0)")
    assert total.aggregates("_a") == (["AVG(x)"], "ROUND(_a0, 2)")
    assert mixed.aggregates("_a") == (["MAX(x)"], "x - _a0")
    assert window.aggregates("_a") == ([], "SUM(x) OVER ()")


@pytest.mark.unit
def test_columns_after_each_function() -> None:
    columns = ["a", "b"]
    (cut, cut_in_place, merge, uuid_, fill) = parsed(
        {"name": "cut_character", "column": "a", "asColumn": "c", "startIndex": 1, "endIndex": 2},
        {"name": "cut_character", "column": "A", "startIndex": 1, "endIndex": 2},
        {"name": "merge", "separator": "-", "columns": ["a", "b"], "asColumn": "ab"},
        {"name": "generate_uuid", "asColumn": "id"},
        {"name": "fill_null_or_empty", "columns": {"a": "-", "z": "-"}},
    )
    assert cut.columns_after(columns) == ["a", "b", "c"]
    assert cut_in_place.columns_after(columns) == ["a", "b"]
    assert merge.columns_after(columns) == ["a", "b", "ab"]
    assert uuid_.columns_after(columns) == ["a", "b", "id"]
    assert fill.problems(columns) == ["fill_null_or_empty: no column 'z'; columns: a, b"]


@pytest.mark.unit
def test_mask_pattern_runs() -> None:
    (mask,) = parsed({"name": "mask_number", "column": "a", "pattern": "XXX-XX-####"})
    assert mask.pieces() == ["XXX-XX-", (8, 4)]


@pytest.mark.unit
def test_argument_and_column_errors_named_at_validation(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        "SELECT 'a' AS PREFIX",
        [
            {"name": "fill_null_or_empty", "columns": {"PREFIX": "-", "SUFFIX": "-"}},
            {"name": "hash", "column": "PREFIX", "algo": "crc32"},
            {"name": "encode", "column": "PREFIX", "algo": "base64", "as": "x"},
        ],
    )
    where = f"{tmp_path / 'checked.yaml'}: workflow.dag[0].spec.stackSpec.job.steps[0].sequence[0].functions"
    assert any(p.startswith(f"{where}[1].algo: got 'crc32'; allowed: ") for p in problems), problems
    assert f"{where}[2].as: unknown key; allowed: name, column, asColumn, algo" in problems, problems


@pytest.mark.unit
def test_missing_fill_column_fails_validation(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path, "SELECT 'a' AS PREFIX", [{"name": "fill_null_or_empty", "columns": {"SUFFIX": "-"}}]
    )
    assert problems == [
        f"{tmp_path / 'checked.yaml'}: workflow.dag[0].spec.stackSpec.job.steps[0].sequence[0].functions[0]: "
        "fill_null_or_empty: no column 'SUFFIX'; columns: PREFIX"
    ]


# --- on data, one Dagster run --------------------------------------------------------------------

PEOPLE = "SELECT * FROM VALUES (1, 'Damon Langosh'), (2, 'adalberto WUNSCH'), (3, NULL) AS t(id, name)"
SSNS = (
    "SELECT * FROM VALUES (1, '999-65-3251'), (2, '999-49-3323'), (3, '12'), (4, '999-65-32519'), (5, NULL)"
)

CASES = {
    "change_case_lower": (PEOPLE, [{"name": "change_case", "case": "lower", "column": "name"}]),
    "change_case_upper": (PEOPLE, [{"name": "change_case", "case": "uppercase", "column": "NAME"}]),
    "change_case_title": (PEOPLE, [{"name": "change_case", "case": "title", "column": "name"}]),
    "cut_character": (
        "SELECT * FROM VALUES (1, '2019-02-17'), (2, '2005-07-04'), (3, NULL) AS t(id, BIRTHDATE)",
        [
            {
                "name": "cut_character",
                "column": "BIRTHDATE",
                "asColumn": "birth_year",
                "startIndex": 1,
                "endIndex": 4,
            },
            {"name": "cut_character", "column": "BIRTHDATE", "startIndex": 6, "endIndex": 7},
        ],
    ),
    "decode": (
        "SELECT * FROM VALUES (1, 'GIYTENBU', 'MjEyNDQ=', '3231323434'), (2, 'MZXW6YTBOI======', 'Zm9vYmFy', "
        "'666F6F626172'), (3, '1!', '***', 'XYZ'), (4, NULL, NULL, NULL) AS t(id, b32, b64, hex)",
        [
            {"name": "decode", "algo": "base32", "column": "b32", "asColumn": "ZIP_DECODED"},
            {"name": "decode", "algo": "base64", "column": "b64"},
            {"name": "decode", "algo": "hex", "column": "hex"},
        ],
    ),
    "encode": (
        "SELECT * FROM VALUES (1, '21244'), (2, 'foobar'), (3, ''), (4, NULL) AS t(id, ZIP_DECODED)",
        [
            {"name": "encode", "algo": "base32", "column": "ZIP_DECODED", "asColumn": "ZIP_ENCODED"},
            {"name": "encode", "algo": "base64", "column": "ZIP_DECODED", "asColumn": "b64"},
            {"name": "encode", "algo": "hex", "column": "ZIP_DECODED", "asColumn": "hex"},
        ],
    ),
    "round_trip": (
        "SELECT 1 AS id, repeat('Flare ', 30) AS text",
        [
            {"name": "encode", "algo": "base64", "column": "text", "asColumn": "b64"},
            {"name": "encode", "algo": "base32", "column": "text", "asColumn": "b32"},
            {"name": "decode", "algo": "base64", "column": "b64"},
            {"name": "decode", "algo": "base32", "column": "b32"},
        ],
    ),
    "fill_null_or_empty": (
        "SELECT * FROM VALUES (1, NULL, 7), (2, 'Mr.', NULL), (3, '', 9) AS t(id, PREFIX, visits)",
        [{"name": "fill_null_or_empty", "columns": {"PREFIX": "not known", "visits": 0}}],
    ),
    "find_and_replace": (
        "SELECT * FROM VALUES (1, 'Damon455 Langosh790', 'a1b2c3'), (2, 'Adalberto916 Wunsch504', 'x9y8'), "
        "(3, 'Larissa293 Adalberto', NULL) AS t(id, OWNERNAME, code)",
        [
            {"name": "find_and_replace", "column": "OWNERNAME", "sedExpression": "s/^Adalberto/Albert/g"},
            {"name": "copy", "fromColumn": "code", "toColumn": "every"},
            {"name": "copy", "fromColumn": "code", "toColumn": "nocase"},
            {"name": "find_and_replace", "column": "code", "sedExpression": r"s/([a-z])([0-9])/\2\1/"},
            {"name": "find_and_replace", "column": "every", "sedExpression": r"s/([a-z])([0-9])/\2\1/g"},
            {"name": "find_and_replace", "column": "nocase", "sedExpression": "s|[A-C]|<&>|gi"},
        ],
    ),
    "hash": (
        "SELECT * FROM VALUES (1, '1-877-267-2323'), (2, '1-800-633-4227'), (3, NULL) AS t(id, PHONE)",
        [
            {"name": "copy", "fromColumn": "PHONE", "toColumn": "sha1"},
            {"name": "copy", "fromColumn": "PHONE", "toColumn": "sha256"},
            {"name": "copy", "fromColumn": "PHONE", "toColumn": "sha384"},
            {"name": "copy", "fromColumn": "PHONE", "toColumn": "sha512"},
            {"name": "hash", "column": "PHONE", "algo": "MD5"},
            {"name": "hash", "column": "sha1", "algo": "SHA-1"},
            {"name": "hash", "column": "sha256", "algo": "SHA-256"},
            {"name": "hash", "column": "sha384", "algo": "sha-384"},
            {"name": "hash", "column": "sha512", "algo": "SHA512"},
        ],
    ),
    "mask_number": (
        f"{SSNS} AS t(id, SSN)",
        [{"name": "mask_number", "column": "SSN", "pattern": "XXX-XX-####"}],
    ),
    "merge": (
        "SELECT * FROM VALUES (1, 'Damon', 'Langosh'), (2, NULL, 'Wunsch') AS t(id, FIRST, LAST)",
        [
            {"name": "merge", "separator": " ", "columns": ["FIRST", "LAST"], "asColumn": "full_name"},
            {"name": "merge", "separator": "__", "columns": ["LAST", "id", "first"], "asColumn": "key"},
        ],
    ),
    "trim": (
        "SELECT 1 AS id, ' \\t a b \\n' AS around, '  a ' AS lead, '  a ' AS tail",
        [
            {"name": "trim", "column": "around"},
            {"name": "trim", "column": "lead", "method": "ltrim"},
            {"name": "trim", "column": "tail", "method": "RTRIM"},
        ],
    ),
    "set_type": (
        "SELECT '9039.164' AS HEALTHCARE_EXPENSES, '12.5' AS HEALTHCARE_COVERAGE, '7' AS visits, 'x' AS other",
        [
            {
                "name": "set_type",
                "columns": {
                    "HEALTHCARE_EXPENSES": "float",
                    "healthcare_coverage": "decimal(10,2)",
                    "visits": "int",
                },
            }
        ],
    ),
    "generate_uuid": (PEOPLE, [{"name": "generate_uuid", "asColumn": "UUID_COLUMN"}]),
    "set_variable": (
        "SELECT * FROM VALUES (9039.164D), (402723.4D) AS t(HEALTHCARE_EXPENSES)",
        [
            {
                "name": "set_variable",
                "column": "HEALTHCARE_EXPENSES_ROUNDED",
                "expression": "ROUND(HEALTHCARE_EXPENSES, 0)",
            },
            {"name": "set_variable", "column": "average", "expression": "ROUND(AVG(HEALTHCARE_EXPENSES), 2)"},
            {
                "name": "set_variable",
                "column": "share",
                "expression": "HEALTHCARE_EXPENSES / SUM(HEALTHCARE_EXPENSES)",
            },
        ],
    ),
    "increment_variable": (
        "SELECT * FROM VALUES (1, 10L, 1.5D, CAST(2.25 AS DECIMAL(4,2))), (2, NULL, NULL, NULL) AS t(id, n, d, m)",
        [
            {"name": "increment_variable", "column": "n"},
            {"name": "increment_variable", "column": "d"},
            {"name": "increment_variable", "column": "M"},
            {"name": "increment_variable", "column": "id"},
        ],
    ),
}


@pytest.fixture(scope="module")
def tables(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    return run_cases(settings, tmp_path_factory.mktemp("values"), CASES)


def by(rows: list[dict], key: str = "id") -> list[dict]:
    return sorted(rows, key=lambda r: r[key])


def column(rows: list[dict], name: str, key: str = "id") -> list:
    return [r[name] for r in by(rows, key)]


def test_change_case(tables: dict[str, list[dict]]) -> None:
    assert column(tables["change_case_lower"], "name") == ["damon langosh", "adalberto wunsch", None]
    assert column(tables["change_case_upper"], "name") == ["DAMON LANGOSH", "ADALBERTO WUNSCH", None]
    assert column(tables["change_case_title"], "name") == ["Damon Langosh", "Adalberto Wunsch", None]


def test_cut_character(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["cut_character"])
    assert [(r["birth_year"], r["BIRTHDATE"]) for r in rows] == [("2019", "02"), ("2005", "07"), (None, None)]
    assert list(rows[0]) == ["id", "BIRTHDATE", "birth_year"]


def test_decode(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["decode"])
    assert [r["ZIP_DECODED"] for r in rows] == ["21244", "foobar", None, None]
    assert [r["b64"] for r in rows] == ["21244", "foobar", None, None]
    assert [r["hex"] for r in rows] == ["21244", "foobar", None, None]
    assert rows[0]["b32"] == "GIYTENBU"


def test_encode(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["encode"])
    assert [r["ZIP_ENCODED"] for r in rows] == ["GIYTENBU", "MZXW6YTBOI======", "", None]
    assert [r["b64"] for r in rows] == ["MjEyNDQ=", "Zm9vYmFy", "", None]
    assert [r["hex"] for r in rows] == ["3231323434", "666F6F626172", "", None]


def test_long_values_encode_on_one_line_and_decode_back(tables: dict[str, list[dict]]) -> None:
    (row,) = tables["round_trip"]
    assert row["text"] == row["b64"] == row["b32"] == "Flare " * 30


def test_fill_null_or_empty(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["fill_null_or_empty"])
    assert [r["PREFIX"] for r in rows] == ["not known", "Mr.", "not known"]
    assert [r["visits"] for r in rows] == [7, 0, 9]


def test_find_and_replace(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["find_and_replace"])
    assert [r["OWNERNAME"] for r in rows] == [
        "Damon455 Langosh790",
        "Albert916 Wunsch504",
        "Larissa293 Adalberto",
    ]
    assert [r["code"] for r in rows] == ["1ab2c3", "9xy8", None]
    assert [r["every"] for r in rows] == ["1a2b3c", "9x8y", None]
    assert [r["nocase"] for r in rows] == ["<a>1<b>2<c>3", "x9y8", None]


def test_hash(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["hash"])
    phone = b"1-877-267-2323"
    assert rows[0]["PHONE"] == hashlib.md5(phone).hexdigest()
    assert rows[0]["PHONE"].startswith("75cb2eeea30b8b577") and rows[1]["PHONE"].startswith(
        "d71c4d3eae0755df6"
    )
    assert rows[0]["sha1"] == hashlib.sha1(phone).hexdigest()
    assert rows[0]["sha256"] == hashlib.sha256(phone).hexdigest()
    assert rows[0]["sha384"] == hashlib.sha384(phone).hexdigest()
    assert rows[0]["sha512"] == hashlib.sha512(phone).hexdigest()
    assert set(rows[2].values()) == {3, None}


def test_mask_number(tables: dict[str, list[dict]]) -> None:
    masked = column(tables["mask_number"], "SSN")
    assert masked == ["XXX-XX-3251", "XXX-XX-3323", "XXX-XX-", "XXX-XX-3251", None]


def test_merge(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["merge"])
    assert [r["full_name"] for r in rows] == ["Damon Langosh", "Wunsch"]
    assert [r["key"] for r in rows] == ["Langosh__1__Damon", "Wunsch__2"]
    assert list(rows[0]) == ["id", "FIRST", "LAST", "full_name", "key"]


def test_trim(tables: dict[str, list[dict]]) -> None:
    (row,) = tables["trim"]
    assert (row["around"], row["lead"], row["tail"]) == ("a b", "a ", "  a")


def test_set_type(tables: dict[str, list[dict]]) -> None:
    (row,) = tables["set_type"]
    assert list(row) == ["HEALTHCARE_EXPENSES", "HEALTHCARE_COVERAGE", "visits", "other"]
    assert row["HEALTHCARE_EXPENSES"] == pytest.approx(9039.164)
    assert row["HEALTHCARE_COVERAGE"] == Decimal("12.50")
    assert row["visits"] == 7 and row["other"] == "x"


def test_generate_uuid(tables: dict[str, list[dict]]) -> None:
    ids = column(tables["generate_uuid"], "UUID_COLUMN")
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 4 and re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)


def test_set_variable(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["set_variable"], "HEALTHCARE_EXPENSES")
    assert [r["HEALTHCARE_EXPENSES_ROUNDED"] for r in rows] == [9039.0, 402723.0]
    assert [r["average"] for r in rows] == [205881.28, 205881.28]
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert list(rows[0]) == ["HEALTHCARE_EXPENSES", "HEALTHCARE_EXPENSES_ROUNDED", "average", "share"]


def test_increment_variable(tables: dict[str, list[dict]]) -> None:
    rows = by(tables["increment_variable"])
    assert [(r["id"], r["n"], r["d"], r["m"]) for r in rows] == [
        (2, 11, 2.5, Decimal("3.25")),
        (3, None, None, None),
    ]


def test_increment_variable_of_text_fails_naming_the_column(settings: Settings, tmp_path: Path) -> None:
    message = run_failure(
        settings, tmp_path, "SELECT 'a' AS code", [{"name": "increment_variable", "column": "code"}]
    )
    assert "increment_variable: column 'code' is string, not a number" in message
