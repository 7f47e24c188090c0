"""`${VAR}` is replaced inside parsed string values: a value never changes a manifest's shape, and a
value that would change a SQL statement is refused unless quoted with `${VAR:literal}`. No Spark here."""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_assets.depots import load_depots
from flare_assets.spec.env import sql_literal, substitute
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import LoadedJob, load_jobs
from flare_assets_tests.conftest import DEMO_DEPOTS, write_manifest

pytestmark = pytest.mark.unit

MANIFEST = """
version: v1
name: wf-env
type: workflow
description: ${NOTE:-none}
workflow:
  dag:
    - name: copy
      spec:
        stackSpec:
          job:
            inputs:
              - name: src
                dataset: dataos://landing:raw/people
                format: json
            steps:
              - sequence:
                  - name: people
                    sql: SELECT * FROM src WHERE {where}
            outputs:
              - name: people
                dataset: dataos://lakehouse:clean/${TARGET}
                format: Iceberg
                options:
                  saveMode: append
"""


def _load(tmp_path: Path, where: str = "name = 'x'") -> LoadedJob:
    (lj,) = load_jobs(
        [write_manifest(tmp_path, "m", MANIFEST.replace("{where}", where))], load_depots(DEMO_DEPOTS)
    )
    return lj


def _problems(tmp_path: Path, where: str = "name = 'x'") -> list[str]:
    with pytest.raises(ManifestError) as info:
        _load(tmp_path, where)
    return info.value.problems


@pytest.fixture(autouse=True)
def _target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET", "people")
    monkeypatch.delenv("NOTE", raising=False)


def test_injected_quote_in_sql_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: `name = '${WHO}'` became `name = 'x' OR '1'='1'`, a predicate matching every row
    monkeypatch.setenv("WHO", "x' OR '1'='1")
    (problem,) = _problems(tmp_path, "name = '${WHO}'")
    assert problem.startswith(f"{tmp_path / 'm.yaml'}: workflow.dag[0].spec.stackSpec.job.steps[0]")
    assert "sequence[0].sql: ${WHO} goes into SQL and its value holds a quote" in problem
    assert "write ${WHO:literal}" in problem


def test_semicolon_and_comment_in_sql_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "1; DROP TABLE x")
    assert "a semicolon" in _problems(tmp_path, "id = ${N}")[0]
    monkeypatch.setenv("N", "1 -- rest")
    assert "a comment marker" in _problems(tmp_path, "id = ${N}")[0]


def test_literal_form_quotes_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHO", "O'Hara")
    lj = _load(tmp_path, "name = ${WHO:literal}")
    assert lj.dag_job.job.steps[0].sequence[0].sql == "SELECT * FROM src WHERE name = 'O\\'Hara'"
    monkeypatch.setenv("WHO", "x' OR '1'='1")
    sql = _load(tmp_path, "name = ${WHO:literal}").dag_job.job.steps[0].sequence[0].sql
    assert sql == "SELECT * FROM src WHERE name = 'x\\' OR \\'1\\'=\\'1'"


def test_brace_and_newline_cannot_retarget_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: the value ended the scalar and wrote a second `dataset:` key, so the output moved
    evil = "people}\n                dataset: dataos://lakehouse:other/stolen"
    monkeypatch.setenv("NOTE", evil)
    lj = _load(tmp_path)
    assert lj.manifest.description == evil
    assert lj.dag_job.job.outputs[0].address.table == "lakehouse.clean.people"
    monkeypatch.setenv("TARGET", evil)
    (problem,) = _problems(tmp_path)
    assert "outputs[0].dataset" in problem and "is not a dataset address" in problem


def test_value_with_hash_is_kept_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: YAML read `a #b` pasted into a plain scalar as `a` and a comment
    monkeypatch.setenv("NOTE", "a #b")
    monkeypatch.setenv("WHO", "a #b")
    lj = _load(tmp_path, "name = '${WHO}'")
    assert lj.manifest.description == "a #b"
    assert lj.dag_job.job.steps[0].sequence[0].sql.endswith("name = 'a #b'")


def test_unset_variable_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARGET")
    (problem,) = _problems(tmp_path)
    assert "outputs[0].dataset: ${TARGET}: environment variable is not set" in problem


def test_an_unfilled_template_slot_is_named() -> None:
    data = {"workflow": {"dag": [{"name": "${{job name}}", "spec": {"sql": "SELECT 1"}}]}}
    _, problems = substitute(data, Path("m.yaml"), env={})
    assert problems == [
        "m.yaml: workflow.dag[0].name: ${{job name}} is a slot of a template, to fill in with the value "
        "itself (a variable reads ${NAME})"
    ]


def test_variables_in_comments_are_not_read(tmp_path: Path) -> None:
    text = MANIFEST.replace("{where}", "true") + "# ${NEVER_SET} in a comment\n"
    (lj,) = load_jobs([write_manifest(tmp_path, "m", text)], load_depots(DEMO_DEPOTS))
    assert lj.manifest.description == "none"


def test_sql_literal_escapes() -> None:
    assert sql_literal("O'Hara") == "'O\\'Hara'"
    assert sql_literal("a\\b") == "'a\\\\b'"
    assert sql_literal("x}\ny") == "'x}\\ny'"


def test_housekeeping_expressions_reach_sql_too() -> None:
    env = {"V": "1' OR '1'='1", "OK": "7"}
    data = {"housekeeping": {"retentionCondition": "x = '${V}'", "archivePartitionExpression": "${OK}"}}
    out, problems = substitute(data, Path("m.yaml"), env)
    (problem,) = problems
    assert problem.startswith("m.yaml: housekeeping.retentionCondition: ${V} goes into SQL")
    assert out["housekeeping"]["archivePartitionExpression"] == "7"
    out, problems = substitute({"description": "x = '${V}'"}, Path("m.yaml"), env)
    assert problems == [] and out == {"description": "x = '1' OR '1'='1'"}
