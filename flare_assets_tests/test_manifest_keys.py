"""Every manifest key is applied, refused or announced as DataOS-only metadata; none is silently
ignored. No Spark here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

import flare_assets
from flare_assets.depots import load_depots
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets.spec.model import METADATA_ONLY, Manifest
from flare_assets_tests.conftest import DEMO_DEPOTS
from flare_assets_tests.functions_harness import manifest, write

PACKAGE = Path(flare_assets.__file__).parent


def _models(annotation: typing.Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _fields(model: type[BaseModel], path: str, seen: set[type]) -> list[tuple[str, str, str]]:
    """(model name, field name, YAML path) of every key reachable from `model`."""
    if model in seen:
        return []
    seen.add(model)
    out = []
    for name, field in model.model_fields.items():
        here = f"{path}.{field.alias or name}"
        out.append((model.__name__, name, here))
        for sub in _models(field.annotation):
            out += _fields(sub, here, seen)
    return out


def _source() -> str:
    text = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    return re.sub(r"METADATA_ONLY: dict.*?\n}\n", "", text, flags=re.DOTALL)


@pytest.mark.unit
def test_every_key_is_used_or_metadata_only() -> None:
    """A key the code never reads (as `.name`, or by its name in a string) and that is not on the
    metadata-only list would validate and then do nothing."""
    source = _source()
    unused = [
        f"{model}.{name} ({path})"
        for model, name, path in _fields(Manifest, "", set())
        if (model, name) not in METADATA_ONLY and not re.search(rf"\.{name}\b|[\"']{name}[\"']", source)
    ]
    assert unused == []


def _doc(**extra: typing.Any) -> dict:
    doc = manifest("keys", {"result": ("SELECT 1 AS id, 'a' AS city", [])})
    for path, value in extra.items():
        node = doc
        *parents, last = path.split("/")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return doc


def _problems(tmp_path: Path, doc: dict) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_jobs([write(tmp_path, doc)], load_depots(DEMO_DEPOTS))
    return info.value.problems


@pytest.mark.unit
def test_metadata_only_keys_are_accepted_with_one_warning_each(tmp_path: Path) -> None:
    doc = _doc(
        **{
            "workspace": "public",
            "layer": "user",
            "workflow/dag/0/spec/stack": "flare:7.0",
            "workflow/dag/0/spec/compute": "runnable-default",
            "workflow/dag/0/spec/envs": {"DISABLE_HADOOP_PATH_CHECKS": "true"},
            "workflow/dag/0/spec/stackSpec/configs": {},
            "workflow/dag/0/spec/stackSpec/job/variables": {"keepSystemColumns": "false"},
        }
    )
    path = write(tmp_path, doc)
    env = {k: v for k, v in os.environ.items() if k != "FLARE_HOME"}
    done = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 7
    assert (
        f"warning: {path}: workspace: the DataOS workspace the workflow is applied in; accepted, has no effect here"
        in warnings
    )
    assert any("workflow.dag[0].spec.stackSpec.job.variables: DataOS job variables" in w for w in warnings)
    assert not (tmp_path / ".flare").exists(), "validating must not create local state"


@pytest.mark.unit
def test_empty_tags_and_numeric_memory(tmp_path: Path) -> None:
    doc = _doc(
        **{
            "tags": None,
            "workflow/dag/0/spec/tags": None,
            "workflow/dag/0/spec/stackSpec/driver": {"memory": 2048, "cores": 1},
            "workflow/dag/0/spec/stackSpec/executor": {"memory": "1600Mi", "memoryOverhead": "1Gi"},
        }
    )
    (lj,) = load_jobs([write(tmp_path, doc)], load_depots(DEMO_DEPOTS))
    assert lj.manifest.tags == [] and lj.dag_job.spec.tags == []
    conf = lj.dag_job.spec.stack_spec.static_conf()
    assert conf["spark.driver.memory"] == "2048m"
    assert conf["spark.executor.memory"] == "1600m"
    assert conf["spark.executor.memoryOverhead"] == "1g"


@pytest.mark.unit
def test_sql_file_is_read_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "result.sql").write_text("SELECT 2 AS id")
    doc = _doc()
    step = doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]["steps"][0]["sequence"][0]
    del step["sql"]
    step["sqlFile"] = "sql/result.sql"
    (lj,) = load_jobs([write(tmp_path, doc)], load_depots(DEMO_DEPOTS))
    assert lj.dag_job.job.steps[0].sequence[0].sql == "SELECT 2 AS id"
    step["sqlFile"] = "sql/missing.sql"
    (problem,) = _problems(tmp_path, doc)
    assert "steps[0].sequence[0].sqlFile: cannot read" in problem and "missing.sql" in problem


@pytest.mark.unit
def test_format_of_an_iceberg_input_is_checked(tmp_path: Path) -> None:
    doc = _doc()
    doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]["inputs"] = [
        {"name": "src", "dataset": "dataos://lakehouse:retail/customers", "format": "bigquery"}
    ]
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith("inputs[0].format: got 'bigquery' on iceberg depot 'lakehouse'; allowed: iceberg")


@pytest.mark.unit
def test_partition_by_on_iceberg_is_identity_partitioning(tmp_path: Path) -> None:
    doc = _doc(**{"workflow/dag/0/spec/stackSpec/job/outputs/0/options": {"partitionBy": ["city"]}})
    (lj,) = load_jobs([write(tmp_path, doc)], load_depots(DEMO_DEPOTS))
    options = lj.dag_job.job.outputs[0].options
    assert [(f.type, f.column) for f in options.iceberg.partition_spec] == [("identity", "city")]
    doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]["outputs"][0]["options"]["iceberg"] = {
        "partitionSpec": [{"type": "bucket", "column": "id", "numBuckets": 4}]
    }
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith("options.partitionBy: give partitionBy or iceberg.partitionSpec, not both")


@pytest.mark.unit
def test_file_options_take_no_iceberg_table_options(tmp_path: Path) -> None:
    doc = _doc(
        **{
            "workflow/dag/0/spec/stackSpec/job/outputs/0/options": {
                "file": {"saveMode": "Overwrite", "outputType": "CSV"},
                "iceberg": {"properties": {"write.format.default": "orc"}},
            }
        }
    )
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith(
        "outputs[0].options.file: writes files, which take no iceberg (those go with Iceberg tables)"
    )


@pytest.mark.unit
def test_a_key_at_the_wrong_level_says_where_it_goes(tmp_path: Path) -> None:
    doc = _doc()
    job = doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]
    job["sparkConf"] = [{"spark.sql.shuffle.partitions": "4"}]
    job["rewriteDataset"] = {"mode": "full"}
    problems = sorted(_problems(tmp_path, doc))
    assert problems[0].endswith(
        "rewriteDataset goes at job.actions[] as `name: rewrite_dataset` (it is an action)"
    )
    assert problems[1].endswith("sparkConf goes at workflow.dag[].spec.stackSpec.sparkConf")


@pytest.mark.unit
def test_every_problem_of_a_file_in_one_pass(tmp_path: Path) -> None:
    doc = _doc()
    job = doc["workflow"]["dag"][0]["spec"]["stackSpec"]["job"]
    job["inputs"] = [{"name": "src", "dataset": "dataos://nowhere:a/b"}]
    job["steps"][0]["sequence"][0]["sql"] = "SELECT id FROM srcs"
    job["steps"][0]["sequence"][0]["functions"] = [{"name": "drop", "columns": ["city"]}]
    problems = _problems(tmp_path, doc)
    assert any("inputs[0].dataset: unknown depot 'nowhere'" in p for p in problems)
    assert any("sequence[0].sql: step 'result' reads 'srcs'" in p for p in problems)
    assert any("sequence[0].functions[0]: drop: no column 'city'; columns: id" in p for p in problems)


@pytest.mark.unit
def test_schedule_policy_and_end(tmp_path: Path) -> None:
    doc = _doc(
        workflow={**_doc()["workflow"], "schedule": {"cron": "0 * * * *", "concurrencyPolicy": "Replace"}}
    )
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith("workflow.schedule.concurrencyPolicy: got 'Replace'; allowed: Allow, Forbid")
    doc["workflow"]["schedule"] = {
        "cron": "0 * * * *",
        "concurrencyPolicy": "forbid",
        "endOn": "2022-12-31T23:59:45Z",
    }
    (lj,) = load_jobs([write(tmp_path, doc)], load_depots(DEMO_DEPOTS))
    assert lj.manifest.workflow.schedule.concurrency_policy == "Forbid"
    assert lj.manifest.workflow.schedule.end_on.year == 2022
    assert yaml.safe_dump(doc)


def test_schedule_skips_past_end_and_while_a_run_is_in_flight(tmp_path: Path, settings) -> None:  # noqa: ANN001
    from datetime import UTC, datetime

    from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, build_schedule_context

    from flare_assets_tests.conftest import build_definitions

    doc = _doc()
    doc["workflow"]["schedule"] = {
        "cron": "0 * * * *",
        "concurrencyPolicy": "Forbid",
        "endOn": "2030-01-01T00:00:00Z",
    }
    write(tmp_path, doc)
    schedule = next(
        s for s in build_definitions(settings, [tmp_path]).schedules if s.name == "keys_job_schedule"
    )
    with DagsterInstance.local_temp(str(tmp_path)) as instance:

        def tick(when: datetime):  # noqa: ANN202
            with build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
                return schedule.evaluate_tick(context)

        assert len(tick(datetime(2029, 1, 1, tzinfo=UTC)).run_requests) == 1
        assert "ended on 2030-01-01" in tick(datetime(2030, 1, 2, tzinfo=UTC)).skip_message
        instance.add_run(
            DagsterRun(job_name=schedule.job_name, run_id="busy-run", status=DagsterRunStatus.STARTED)
        )
        busy = tick(datetime(2029, 1, 1, tzinfo=UTC))
        assert "run busy-run is in flight (concurrencyPolicy: Forbid)" in busy.skip_message
