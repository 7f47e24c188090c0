"""Malformed records in batch JSON and CSV inputs: quarantined with their reason (default), failing
the run, or left to Spark on purpose. Run through Dagster, read back with pyiceberg."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets_tests import manifests
from flare_assets_tests.conftest import build_definitions, failure_message, materialize_all

GOOD_JSON = [json.dumps({"id": n, "name": f"n{n}", "amount": n * 1.5}) for n in range(1, 11)]
BAD_JSON = [
    '{"id": 11, "name": "cut off"',
    "not json at all",
    '{"id": "n/a", "name": "x", "amount": 1.0}',
    '{"id": 14, "name": "y", "amount": "ten"}',
]
GOOD_CSV = [f"{n},n{n},{n * 1.5}" for n in range(1, 11)]
BAD_CSV = ["11,k,1.5,extra", "n/a,x,2.0", "13,m", "15,y,abc"]
SCHEMA = "id INT, name STRING, amount DOUBLE"


def land(settings: Settings, dataset: str, name: str, lines: list[str]) -> None:
    folder = settings.resolve("landing") / "bad" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")


def job(inputs: list[dict[str, Any]], collection: str) -> dict[str, Any]:
    steps = [{"name": f"{i['name']}_out", "sql": f"SELECT * FROM {i['name']}"} for i in inputs]
    outputs = [
        {"name": f"{i['name']}_out", "dataset": f"dataos://lakehouse:{collection}/{i['name']}"}
        for i in inputs
    ]
    return manifests.workflow(collection, manifests.job(inputs, steps, outputs))


def run(settings: Settings, folder: Path, doc: dict[str, Any]):  # noqa: ANN201
    manifests.write(folder, doc, "m")
    return materialize_all(build_definitions(settings, [folder]), raise_on_error=False)


def rows(settings: Settings, table: str) -> list[dict[str, Any]]:
    return load_catalog(settings=settings).load_table(table).scan().to_arrow().to_pylist()


def test_malformed_json_and_csv_records_are_quarantined_with_their_reason(
    settings: Settings, tmp_path: Path
) -> None:
    land(settings, "events", "a.json", GOOD_JSON[:5] + BAD_JSON + GOOD_JSON[5:])
    land(settings, "orders", "a.csv", ["id,name,amount", *GOOD_CSV[:5], *BAD_CSV, *GOOD_CSV[5:]])
    land(settings, "loose", "a.json", GOOD_JSON[:8] + BAD_JSON[:2])
    land(settings, "spark", "a.json", GOOD_JSON + BAD_JSON)
    inputs = [
        {"name": "events", "dataset": "dataos://landing:bad/events", "schemaString": SCHEMA},
        {"name": "orders", "dataset": "dataos://landing:bad/orders", "format": "csv", "schemaString": SCHEMA},
        {"name": "loose", "dataset": "dataos://landing:bad/loose"},  # schema inferred
        {"name": "spark", "dataset": "dataos://landing:bad/spark", "schemaString": SCHEMA},
    ]
    inputs[3]["onBadRecords"] = "permissive"
    result = run(settings, tmp_path, job(inputs, "qbad"))
    assert result.success, failure_message(result)

    for table in ("qbad.events", "qbad.orders"):
        got = rows(settings, table)
        assert sorted(r["id"] for r in got) == list(range(1, 11))
        assert all(r["name"] and r["amount"] for r in got)
    loose = load_catalog(settings=settings).load_table("qbad.loose")
    assert [(f.name, str(f.field_type)) for f in loose.schema().fields] == [
        ("amount", "double"),
        ("id", "long"),
        ("name", "string"),
    ]
    assert sorted(r["id"] for r in rows(settings, "qbad.loose")) == list(range(1, 9))
    assert len(rows(settings, "qbad.spark")) == 14  # permissive: Spark's behaviour, chosen on purpose

    quarantined = rows(settings, "qbad.events_quarantine")
    by_input: dict[str, list[tuple[str, str]]] = {}
    for r in quarantined:
        by_input.setdefault(r["input"], []).append((r["record"], r["reason"]))
        assert r["source_file"].endswith("/a.json" if r["input"] != "orders" else "/a.csv")
        assert r["job"] == "qbad/load" and r["run_id"] == result.run_id
    assert sorted(by_input["events"]) == sorted(
        [
            (BAD_JSON[0], "not a JSON object"),
            (BAD_JSON[1], "not a JSON object"),
            (BAD_JSON[2], "id: n/a is not int"),
            (BAD_JSON[3], "amount: ten is not double"),
        ]
    )
    assert sorted(by_input["orders"]) == sorted(
        [
            (BAD_CSV[0], "4 fields, expected 3"),
            (BAD_CSV[1], "id: 'n/a' is not int"),
            (BAD_CSV[2], "2 fields, expected 3"),
            (BAD_CSV[3], "amount: 'abc' is not double"),
        ]
    )
    assert sorted(r for r, _ in by_input["loose"]) == sorted(BAD_JSON[:2])
    assert "spark" not in by_input

    mats = {
        m.asset_key.path[-1]: m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    meta = mats["events"]
    assert meta["malformed_records"].value == 10 and meta["quarantined_records"].value == 10
    assert meta["quarantine_table"].value == "lakehouse.qbad.events_quarantine"
    assert meta["rows_written"].value == 10


def test_on_bad_records_fail_names_them_and_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    land(settings, "strict", "a.csv", ["id,name,amount", *GOOD_CSV, BAD_CSV[1]])
    inputs = [
        {
            "name": "strict",
            "dataset": "dataos://landing:bad/strict",
            "format": "csv",
            "schemaString": SCHEMA,
            "onBadRecords": "fail",
        }
    ]
    result = run(settings, tmp_path, job(inputs, "fbad"))
    assert not result.success
    message = failure_message(result)
    assert "input 'strict': 1 malformed record(s)" in message and "id: 'n/a' is not int" in message
    assert "(onBadRecords: fail); nothing was written" in message
    assert not load_catalog(settings=settings).table_exists("fbad.strict")


def test_which_inputs_are_checked_for_malformed_records() -> None:
    """JSON and CSV files unless the policy or a Spark parse mode in the options says otherwise (no JVM)."""
    from flare_assets.depots import load_depots
    from flare_assets.engine.batch.bad_records import applies
    from flare_assets.spec.model import Input
    from flare_assets_tests.conftest import DEMO_DEPOTS

    depots = load_depots(DEMO_DEPOTS)

    def item(**fields: Any) -> Input:
        return Input.model_validate({"name": "i", "dataset": "dataos://landing:bad/x", **fields})

    assert applies(item(), depots)  # the landing depot's format is json
    assert applies(item(format="csv", onBadRecords="FAIL"), depots)
    assert not applies(item(format="parquet"), depots)
    assert not applies(item(onBadRecords="permissive"), depots)
    assert not applies(item(options={"mode": "DROPMALFORMED"}), depots)
    assert not applies(Input.model_validate({"name": "i", "dataset": "dataos://lakehouse:a/b"}), depots)
