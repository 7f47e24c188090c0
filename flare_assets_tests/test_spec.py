"""Manifest validation: every error names the file, the YAML path and what is allowed. No Spark here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flare_assets.depots import load_depots
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import DEMO_DEPOTS, write_manifest
from flare_assets_tests.manifests import job, job_of, workflow, write

DEMO_PIPELINES = DEMO_DEPOTS.parent / "pipelines"


def good(mode: str = "append", name: str = "wf-test", collection: str = "clean") -> dict:
    """A valid workflow: one job copying landing's raw/things (JSON) to lakehouse:<collection>/things."""
    inputs = [{"name": "src", "dataset": "dataos://landing:raw/things", "format": "json"}]
    output = {
        "name": "things",
        "dataset": f"dataos://lakehouse:{collection}/things",
        "format": "Iceberg",
        "options": {"saveMode": mode},
    }
    return workflow(name, job(inputs, [{"name": "things", "sql": "SELECT * FROM src"}], [output]), dag="copy")


def _problems(tmp_path: Path, doc: dict | str) -> list[str]:
    path = write(tmp_path, doc, "m") if isinstance(doc, dict) else write_manifest(tmp_path, "m", doc)
    with pytest.raises(ManifestError) as info:
        load_jobs([path], load_depots(DEMO_DEPOTS))
    return info.value.problems


@pytest.mark.unit
def test_demo_manifests_are_valid() -> None:
    jobs = load_jobs([DEMO_PIPELINES], load_depots(DEMO_DEPOTS))
    assert {lj.name for lj in jobs} == {
        "retail__orders_enriched",
        "reporting__city_revenue",
        "audited__daily_sales",
        "web__events",
        "incremental__daily_city_orders",
        "incremental__new_orders",
        "distribution__customer_profiles",
        "distribution__export_city_revenue",
        "reporting_units__stage_uploads",
        "directory__customer_directory",
        "retail_quality__orders_checks",
    }


@pytest.mark.unit
def test_unknown_save_mode_names_file_path_and_allowed(tmp_path: Path) -> None:
    problems = _problems(tmp_path, good("upsert"))
    path = "workflow.dag[0].spec.stackSpec.job.outputs[0].options.saveMode"
    assert problems == [f"{tmp_path / 'm.yaml'}: {path}: got 'upsert'; allowed: append, overwrite"]


@pytest.mark.unit
def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    doc = good()
    job_of(doc)["outputs"][0]["options"]["partitonBy"] = ["x"]
    (problem,) = _problems(tmp_path, doc)
    assert "outputs[0].options.partitonBy: unknown key; allowed: saveMode, partitionBy" in problem


@pytest.mark.unit
def test_missing_required_key(tmp_path: Path) -> None:
    doc = good()
    del job_of(doc)["inputs"][0]["dataset"]
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith("workflow.dag[0].spec.stackSpec.job.inputs[0].dataset: required key is missing")


@pytest.mark.unit
def test_output_must_name_a_step(tmp_path: Path) -> None:
    doc = good()
    job_of(doc)["outputs"][0]["name"] = "thingz"
    (problem,) = _problems(tmp_path, doc)
    assert "stackSpec.job: Value error" not in problem
    assert "output 'thingz' names no input or step; allowed: src, things" in problem


@pytest.mark.unit
def test_bad_yaml_names_line(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, "version: v1\nname: [unclosed\n")
    assert problem.startswith(f"{tmp_path / 'm.yaml'}: line 3, column 1: not valid YAML")


@pytest.mark.unit
def test_unknown_depot_and_bad_address(tmp_path: Path) -> None:
    doc = good()
    job_of(doc)["inputs"][0]["dataset"] = "dataos://nowhere:raw/things"
    (problem,) = _problems(tmp_path, doc)
    assert "inputs[0].dataset: unknown depot 'nowhere'; allowed: lakehouse, landing" in problem
    job_of(doc)["inputs"][0]["dataset"] = "landing/raw/things"
    (problem,) = _problems(tmp_path, doc)
    assert "inputs[0].dataset: 'landing/raw/things' is not a dataset address" in problem


@pytest.mark.unit
def test_duplicate_output_across_manifests(tmp_path: Path) -> None:
    write(tmp_path, good(), "a")
    write(tmp_path, good(name="wf-other"), "b")
    with pytest.raises(ManifestError) as info:
        load_jobs([tmp_path], load_depots(DEMO_DEPOTS))
    (problem,) = info.value.problems
    assert "dataos://lakehouse:clean/things (asset lakehouse/clean/things) is already written by" in problem


@pytest.mark.unit
def test_env_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_COLLECTION", "staging")
    doc = good(collection="${TARGET_COLLECTION}")
    (lj,) = load_jobs([write(tmp_path, doc, "m")], load_depots(DEMO_DEPOTS))
    assert lj.dag_job.job.outputs[0].address.table == "lakehouse.staging.things"
    monkeypatch.delenv("TARGET_COLLECTION")
    (problem,) = _problems(tmp_path, doc)
    assert "${TARGET_COLLECTION}: environment variable is not set" in problem


def test_flare_validate_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "validate", str(DEMO_PIPELINES)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    manifests = len(list(DEMO_PIPELINES.glob("*.yaml")))
    assert ok.stdout.startswith(f"ok: {manifests} manifest(s)")
    write(tmp_path, good("upsert"), "bad")
    bad = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "validate", str(tmp_path)], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"{tmp_path / 'bad.yaml'}: workflow.dag[0].spec.stackSpec.job.outputs[0].options.saveMode: "
        "got 'upsert'; allowed: append, overwrite"
    ]


@pytest.mark.unit
def test_column_tags_need_exactly_one_selector(tmp_path: Path) -> None:
    doc = good()
    job_of(doc)["outputs"][0]["columnTags"] = [
        {"columnName": "a", "columnRegex": "^b", "tags": ["pii"]},
        {"columnRegex": "(", "tags": ["pii"]},
    ]
    problems = _problems(tmp_path, doc)
    assert any(
        p.endswith("outputs[0].columnTags[0]: give exactly one of columnName, columnNames or columnRegex")
        for p in problems
    )
    assert any("outputs[0].columnTags[1]: columnRegex '(' is not a regular expression" in p for p in problems)


@pytest.mark.unit
def test_depends_and_cycles(tmp_path: Path) -> None:
    doc = good()
    doc["workflow"]["dag"].append({**good()["workflow"]["dag"][0], "name": "back", "depends": ["copy"]})
    back = job_of(doc, 1)
    back["inputs"][0]["dataset"] = "dataos://lakehouse:clean/things"
    del back["inputs"][0]["format"]
    back["outputs"][0]["dataset"] = "dataos://lakehouse:clean/back"
    (lj_copy, lj_back) = load_jobs([write(tmp_path, doc, "m")], load_depots(DEMO_DEPOTS))
    assert lj_back.dag_job.depends == ["copy"]

    doc["workflow"]["dag"][1]["depends"] = ["cpy"]
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith("workflow.dag[1].depends[0]: no job 'cpy'; allowed: copy, back")

    doc["workflow"]["dag"][1]["depends"] = []
    doc["workflow"]["dag"][0]["depends"] = ["back"]  # copy waits for back, which reads what copy writes
    problems = _problems(tmp_path, doc)
    assert "dependency cycle: wf-test/copy -> wf-test/back -> wf-test/copy" in problems[0]


@pytest.mark.unit
def test_step_reading_an_unknown_view(tmp_path: Path) -> None:
    doc = good()
    job_of(doc)["steps"][0]["sequence"][0]["sql"] = (
        "WITH t AS (SELECT * FROM src) SELECT * FROM t JOIN srcs USING (id)"
    )
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith(
        "workflow.dag[0].spec.stackSpec.job.steps[0].sequence[0].sql: step 'things' reads 'srcs', "
        "which is no input or earlier step; allowed: src"
    )


@pytest.mark.unit
def test_partition_column_missing_from_the_output(tmp_path: Path) -> None:
    doc = good()
    job_of(doc)["steps"][0]["sequence"][0]["sql"] = "SELECT id, name FROM src"
    job_of(doc)["outputs"][0]["options"]["iceberg"] = {"partitionSpec": [{"type": "day", "column": "ts"}]}
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith(
        "outputs[0].options.iceberg.partitionSpec[0].column: 'ts' is not a column of step 'things'; allowed: id, name"
    )


@pytest.mark.unit
def test_pool_serializes_writers_through_dagster(tmp_path: Path) -> None:
    from flare_assets.defs.build import build_definitions
    from flare_assets.settings import Settings

    doc = good()
    doc["workflow"]["dag"][0]["pool"] = "lakehouse/clean/things"
    write(tmp_path, doc, "m")
    defs = build_definitions(Settings.from_env({"FLARE_DEPOTS": str(DEMO_DEPOTS)}), [tmp_path])
    (job_assets,) = [a for a in defs.assets if getattr(a, "op", None) is not None and a.is_executable]
    assert job_assets.op.pool == "lakehouse/clean/things"
    doc["workflow"]["dag"][0]["pool"] = "no spaces"
    (problem,) = _problems(tmp_path, doc)
    assert problem.endswith(
        "workflow.dag[0].pool: Value error, 'no spaces' is not a pool name (letters, digits, _ . - /)".replace(
            "Value error, ", ""
        )
    )
