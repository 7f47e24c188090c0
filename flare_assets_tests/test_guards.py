"""Guards that count: a delete without `all: true` is refused when its predicate matches every row,
decided by counting at run time; cutoffs before 2000-01-01 are refused as probably a duration. And a
`${VAR:literal}` value reaches Spark as one SQL string. Data read back with pyiceberg."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flare_assets.catalog import load_catalog
from flare_assets.defs.build import build_definitions
from flare_assets.defs.tables import maintenance_run_config
from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.actions import Action
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import (
    DEMO_DEPOTS,
    failure_message,
    materialize_all,
    shared_spark,
    table_rows,
)
from flare_assets_tests.manifests import job, output, workflow, write

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def make_people(settings: Settings, rows: int = 30) -> None:
    spark = get_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.guard")
    spark.sql("DROP TABLE IF EXISTS lakehouse.guard.people PURGE")
    spark.sql("CREATE TABLE lakehouse.guard.people (id BIGINT, name STRING) USING iceberg")
    table = load_catalog(settings=settings).load_table("guard.people")
    table.append(pa.table({"id": list(range(rows)), "name": [f"p{i}" for i in range(rows)]}, schema=SCHEMA))


def people(settings: Settings) -> set[int]:
    table = load_catalog(settings=settings).load_table("guard.people")
    return set(table.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist())


def tidy_folder(folder: Path, actions: list[dict]) -> Path:
    inputs = [{"name": "people", "dataset": "dataos://lakehouse:guard/people", "format": "Iceberg"}]
    write(folder, workflow("tidy", job(inputs, actions=actions), dag="people"))
    return folder


def observations(result: Any) -> list[dict[str, Any]]:
    return [
        {k: getattr(v, "value", v) for k, v in e.event_specific_data.asset_observation.metadata.items()}
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]


@pytest.mark.parametrize("predicate", ["id = id", "coalesce(true, false)"])
def test_delete_action_matching_every_row_is_refused(
    settings: Settings, tmp_path: Path, predicate: str
) -> None:
    # before: the always-true check was syntactic; these deleted all 30 rows
    make_people(settings)
    folder = tidy_folder(
        tmp_path, [{"name": "delete_from_dataset", "input": "people", "deleteWhere": predicate}]
    )
    job = build_definitions(settings, [folder]).get_job_def("tidy__people")
    result = job.execute_in_process(resources={"spark": shared_spark()}, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert f"deleteWhere {predicate!r} matches every row (30 of 30); nothing was deleted" in message
    assert "all: true" in message
    assert people(settings) == set(range(30))


def test_delete_from_maintenance_job_counts_and_dry_run_reports(settings: Settings, tmp_path: Path) -> None:
    make_people(settings)
    folder = tidy_folder(tmp_path, [{"name": "rewrite_manifest", "input": "people"}])
    job = build_definitions(settings, [folder]).get_job_def("flare_maintenance")

    def run(**config: Any):  # noqa: ANN202
        return job.execute_in_process(
            run_config=maintenance_run_config(
                job.name, tables=["lakehouse.guard.people"], kinds=[], **config
            ),
            resources={"spark": shared_spark()},
            raise_on_error=False,
        )

    (counted,) = observations(run(delete_where="id = id", dry_run=True))
    assert (counted["rows_matched"], counted["rows_total"], counted["rows_deleted"]) == (30, 30, 0)
    result = run(delete_where="coalesce(true, false)")
    assert "matches every row (30 of 30); nothing was deleted" in failure_message(result)
    assert people(settings) == set(range(30))
    (deleted,) = observations(run(delete_where="id >= 20"))
    assert (deleted["rows_matched"], deleted["rows_total"], deleted["rows_deleted"]) == (10, 30, 10)
    assert people(settings) == set(range(20))
    (emptied,) = observations(run(delete_where="id = id", all=True))
    assert emptied["rows_deleted"] == 20 and people(settings) == set()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"olderThan": 60000}, "olderThan: 60000 is 1970-01-01 00:01:00 UTC"),
        ({"olderThanMillis": 0}, "olderThanMillis: 0 is 1970-01-01 00:00:00 UTC"),
        ({"olderThanMillis": 1733011200}, "olderThanMillis: 1733011200 is 1970-01-21"),
        (
            {"olderThanTimestamp": "1999-12-31T00:00:00Z"},
            "olderThanTimestamp: '1999-12-31T00:00:00Z' is 1999",
        ),
    ],
)
def test_cutoff_before_2000_is_refused_as_a_duration(tmp_path: Path, options: dict, named: str) -> None:
    # before: `olderThan: 60000` ran remove_orphans with a 1970 cutoff, without a word
    folder = tidy_folder(tmp_path, [{"name": "remove_orphans", "input": "people", "options": options}])
    with pytest.raises(ManifestError) as info:
        load_jobs([folder], load_depots(DEMO_DEPOTS))
    (problem,) = info.value.problems
    assert named in problem and "before 2000-01-01: probably a duration" in problem
    with pytest.raises(ValueError, match="before 2000-01-01"):
        Action(name="expire_snapshots", input="t", options={"expireOlderThan": 60000})
    assert Action(name="expire_snapshots", input="t", options={"olderThanMillis": 1733011200000})


COPY = workflow(
    "names",
    job(
        [{"name": "src", "dataset": "dataos://landing:guard/names", "format": "json"}],
        [{"name": "picked", "sql": "SELECT id, name FROM src WHERE name = ${WHO:literal}"}],
        [output("picked", "dataos://lakehouse:guard/picked", "overwrite", format="Iceberg")],
    ),
    dag="pick",
)


def test_literal_value_filters_rows(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = settings.resolve("landing") / "guard" / "names"
    landing.mkdir(parents=True, exist_ok=True)
    names = ["O'Hara", "x", "x' OR '1'='1", "a\\b"]
    (landing / "part.json").write_text(
        "\n".join(json.dumps({"id": i, "name": n}) for i, n in enumerate(names))
    )
    folder = tmp_path / "pipelines"
    write(folder, COPY)
    for i, who in enumerate(names):
        monkeypatch.setenv("WHO", who)
        defs = build_definitions(settings, [folder])
        assert materialize_all(defs).success
        assert table_rows(settings, "guard.picked") == [(i, who)]
