"""Inputs: a query over the dataset, schemas from schemaPath or schemaString, a branch of a table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flare_assets.catalog import load_catalog
from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import DEMO_DEPOTS, write_manifest
from flare_assets_tests.manifests import job_of
from flare_assets_tests.test_syndication import job, run


def _landing(settings: Settings) -> None:
    folder = settings.resolve("landing") / "raw" / "events"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": 1, "kind": "click", "n": 5},
        {"id": 2, "kind": "view", "n": 7},
        {"id": 3, "kind": "click", "n": 9},
    ]
    (folder / "part-1.json").write_text("\n".join(json.dumps(r) for r in rows))


def _manifest(inp: dict, sql: str = "SELECT * FROM ev", target: str = "result") -> dict:
    doc = job(
        [
            {
                "name": "out",
                "dataset": f"dataos://lakehouse:inputs/{target}",
                "options": {"saveMode": "overwrite"},
            }
        ],
        [{"name": "out", "sql": sql}],
    )
    job_of(doc)["inputs"] = [{"name": "ev", **inp}]
    return doc


def _rows(settings: Settings, target: str = "result") -> list[dict]:
    table = load_catalog(settings=settings).load_table(f"inputs.{target}")
    return sorted(table.scan().to_arrow().to_pylist(), key=str)


def test_schema_string_path_and_query(settings: Settings, tmp_path: Path) -> None:
    _landing(settings)
    inp = {
        "dataset": "dataos://landing:raw/events",
        "format": "json",
        "schemaString": "id INT, kind STRING, n LONG",
        "query": "SELECT id, n FROM ev WHERE kind = 'click'",
    }
    run(settings, tmp_path / "a", _manifest(inp))
    assert _rows(settings) == [{"id": 1, "n": 5}, {"id": 3, "n": 9}]

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "events.schema.json").write_text(
        json.dumps(
            {
                "type": "struct",
                "fields": [
                    {"name": "id", "type": "long", "nullable": True, "metadata": {}},
                    {"name": "kind", "type": "string", "nullable": True, "metadata": {}},
                ],
            }
        )
    )
    inp = {"dataset": "dataos://landing:raw/events", "format": "json", "schemaPath": "events.schema.json"}
    run(settings, tmp_path / "b", _manifest(inp, target="typed"))
    assert _rows(settings, "typed") == [
        {"id": 1, "kind": "click"},
        {"id": 2, "kind": "view"},
        {"id": 3, "kind": "click"},
    ]


def test_read_a_branch(settings: Settings, tmp_path: Path) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.src")
    spark.sql("CREATE OR REPLACE TABLE lakehouse.src.branchy (id INT) USING iceberg")
    spark.sql("INSERT INTO lakehouse.src.branchy VALUES (1)")
    spark.sql("ALTER TABLE lakehouse.src.branchy CREATE BRANCH audit")
    spark.sql("INSERT INTO lakehouse.src.branchy.branch_audit VALUES (2)")
    run(
        settings,
        tmp_path,
        _manifest({"dataset": "dataos://lakehouse:src/branchy", "options": {"branch": "audit"}}, target="b"),
    )
    assert _rows(settings, "b") == [{"id": 1}, {"id": 2}]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("inp", "expected"),
    [
        ({"isStream": True}, "inputs[0]: a file stream needs a schema; give schemaString or schemaPath"),
        ({"options": {"branch": "x' OR 1=1"}}, "is not a valid branch name"),
        ({"schemaPath": "nowhere.json"}, "inputs[0].schemaPath: "),
    ],
)
def test_input_errors(tmp_path: Path, inp: dict, expected: str) -> None:
    doc = _manifest({"dataset": "dataos://landing:raw/events", **inp})
    write_manifest(tmp_path, "m", yaml.safe_dump(doc))
    with pytest.raises(ManifestError) as info:
        load_jobs([tmp_path], load_depots(DEMO_DEPOTS))
    assert expected in info.value.problems[0]
