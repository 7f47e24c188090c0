"""Column functions: run on data through Dagster and read back with pyiceberg; argument and column
errors reported before Spark starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_assets.settings import Settings
from flare_assets_tests.functions_harness import load_problems, run_cases, run_failure

PAYERS = (
    "SELECT * FROM VALUES ('d47b', 'Louisville', '40018'), ('6e2f', 'Chicago', '60601') AS t(Id, CITY, ZIP)"
)

CASES = {
    "add_column": (PAYERS, [{"name": "add_column", "column": "order_amount", "value": 8, "type": "int"}]),
    "change_column_case": (PAYERS, [{"name": "change_column_case", "case": "upper"}]),
    "cleanse_column_names": (
        "SELECT 1 AS ` Patient Id `, 2 AS `MEMBER-ID`",
        [{"name": "cleanse_column_names"}],
    ),
    "columns_replace": (
        "SELECT 1 AS stay_days, 2 AS num_days_stay, 3 AS other",
        [{"name": "columns_replace", "sedExpression": "s/stay/stayed/g"}],
    ),
    "copy": (
        "SELECT 'p1' AS PAYER, CAST(NULL AS STRING) AS SECONDARY_PAYER",
        [{"name": "copy", "fromColumn": "PAYER", "toColumn": "SECONDARY_PAYER"}],
    ),
    "drop": (PAYERS, [{"name": "drop", "columns": ["ZIP", "city"]}]),
    "rename": (PAYERS, [{"name": "rename", "column": "Id", "asColumn": "payer_id"}]),
    "rename_all": (PAYERS, [{"name": "rename_all", "columns": {"CITY": "payers_city", "Id": "payers_id"}}]),
    "select": (PAYERS, [{"name": "select", "columns": ["ZIP", "Id"]}]),
    "set_column": (PAYERS, [{"name": "set_column", "column": "CITY", "value": "iamgroot"}]),
    "snake_case": (
        "SELECT 1 AS coveredEncounters, 2 AS UNCOVERED_MEDICATIONS, 3 AS HTTPStatus",
        [{"name": "snake_case"}],
    ),
    "swap": (PAYERS, [{"name": "swap", "columnA": "Id", "columnB": "ZIP"}]),
    "chain": (
        PAYERS,
        [
            {"name": "rename", "column": "Id", "asColumn": "payer_id"},
            {"name": "change_column_case", "case": "lower"},
            {"name": "drop", "columns": ["zip"]},
        ],
    ),
}


@pytest.fixture(scope="module")
def tables(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    return run_cases(settings, tmp_path_factory.mktemp("columns"), CASES)


def test_add_column(tables: dict[str, list[dict]]) -> None:
    assert [r["order_amount"] for r in tables["add_column"]] == [8, 8]


def test_change_column_case(tables: dict[str, list[dict]]) -> None:
    assert list(tables["change_column_case"][0]) == ["ID", "CITY", "ZIP"]


def test_cleanse_column_names(tables: dict[str, list[dict]]) -> None:
    assert tables["cleanse_column_names"] == [{"patient_id": 1, "member_id": 2}]


def test_columns_replace(tables: dict[str, list[dict]]) -> None:
    assert tables["columns_replace"] == [{"stayed_days": 1, "num_days_stayed": 2, "other": 3}]


def test_copy(tables: dict[str, list[dict]]) -> None:
    assert tables["copy"] == [{"PAYER": "p1", "SECONDARY_PAYER": "p1"}]


def test_drop(tables: dict[str, list[dict]]) -> None:
    assert sorted(r["Id"] for r in tables["drop"]) == ["6e2f", "d47b"]
    assert list(tables["drop"][0]) == ["Id"]


def test_rename(tables: dict[str, list[dict]]) -> None:
    assert list(tables["rename"][0]) == ["payer_id", "CITY", "ZIP"]


def test_rename_all(tables: dict[str, list[dict]]) -> None:
    rows = sorted(tables["rename_all"], key=lambda r: r["payers_id"])
    assert rows[0] == {"payers_id": "6e2f", "payers_city": "Chicago", "ZIP": "60601"}


def test_select(tables: dict[str, list[dict]]) -> None:
    assert sorted(tuple(r.items()) for r in tables["select"]) == [
        (("ZIP", "40018"), ("Id", "d47b")),
        (("ZIP", "60601"), ("Id", "6e2f")),
    ]


def test_set_column(tables: dict[str, list[dict]]) -> None:
    assert {r["CITY"] for r in tables["set_column"]} == {"iamgroot"}


def test_snake_case(tables: dict[str, list[dict]]) -> None:
    assert list(tables["snake_case"][0]) == ["covered_encounters", "uncovered_medications", "http_status"]


def test_swap(tables: dict[str, list[dict]]) -> None:
    rows = sorted(tables["swap"], key=lambda r: r["Id"])
    assert rows[0]["Id"] == "40018" and rows[0]["ZIP"] == "d47b"


def test_functions_apply_in_order(tables: dict[str, list[dict]]) -> None:
    assert sorted(tables["chain"], key=lambda r: r["payer_id"]) == [
        {"payer_id": "6e2f", "city": "Chicago"},
        {"payer_id": "d47b", "city": "Louisville"},
    ]


def test_missing_column_at_run_time_names_step_and_function(settings: Settings, tmp_path: Path) -> None:
    message = run_failure(
        settings,
        tmp_path,
        "SELECT * FROM VALUES (1) AS t(a)",
        [{"name": "rename", "column": "b", "asColumn": "c"}],
    )
    assert "step 'failing' failed: functions[0] rename: no column 'b'; columns: a" in message


@pytest.mark.unit
def test_column_the_step_cannot_have_fails_validation(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        "SELECT 1 AS a, 2 AS b",
        [
            {"name": "rename", "column": "a", "asColumn": "x"},
            {"name": "drop", "columns": ["a"]},
        ],
    )
    assert problems == [
        f"{tmp_path / 'checked.yaml'}: workflow.dag[0].spec.stackSpec.job.steps[0].sequence[0].functions[1]: "
        "drop: no column 'a'; columns: x, b"
    ]


@pytest.mark.unit
def test_unknown_function_and_arguments_all_reported(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        "SELECT 1 AS a",
        [
            {"name": "renam", "column": "a"},
            {"name": "rename", "column": "a", "as": "b"},
            {"name": "add_column", "column": "n", "value": 1, "type": "weekly"},
            {"name": "change_column_case", "case": "title"},
        ],
    )
    where = f"{tmp_path / 'checked.yaml'}: workflow.dag[0].spec.stackSpec.job.steps[0].sequence[0].functions"
    assert f"{where}[0]: unknown function 'renam'; allowed: add_column, " in problems[0]
    assert f"{where}[1].asColumn: required key is missing" in problems
    assert f"{where}[1].as: unknown key; allowed: name, column, asColumn" in problems
    assert any(
        p.startswith(f"{where}[2].type: 'weekly' is not a type add_column takes; allowed: string")
        for p in problems
    )
    assert f"{where}[3].case: got 'title'; allowed: lower, upper" in problems


@pytest.mark.unit
def test_every_function_has_a_transformation() -> None:
    from flare_assets.engine.functions import TRANSFORMS
    from flare_assets.spec.functions import REGISTRY

    assert sorted(REGISTRY) == sorted(TRANSFORMS)
