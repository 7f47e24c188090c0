"""Runs Flare functions on inline rows through a real Dagster run and reads the tables back.

`cases` maps a case name to (step SQL, the step's functions); each case becomes one step and one
Iceberg output `lakehouse.fn.<case>` of a single job, so a whole family costs one materialization.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import DEMO_DEPOTS, build_definitions, failure_message, materialize_all
from flare_assets_tests.manifests import job, workflow, write

Cases = dict[str, tuple[str, list[dict[str, Any]]]]


def manifest(name: str, cases: Cases, collection: str = "fn") -> dict[str, Any]:
    steps = [{"name": case, "sql": sql, "functions": functions} for case, (sql, functions) in cases.items()]
    outputs = [
        {"name": case, "dataset": f"dataos://lakehouse:{collection}/{case}", "format": "Iceberg"}
        for case in cases
    ]
    return workflow(name, job(steps=steps, outputs=outputs), dag="apply")


def run_cases(
    settings: Settings, folder: Path, cases: Cases, name: str = "functions"
) -> dict[str, list[dict]]:
    """Materializes every case in one run; each table's rows (in the table's column order), read back
    with pyiceberg."""
    from flare_assets.catalog import load_catalog

    write(folder, manifest(name, cases))
    result = materialize_all(build_definitions(settings, [folder]), raise_on_error=False)
    assert result.success, failure_message(result)
    catalog = load_catalog(settings=settings)
    return {case: catalog.load_table(f"fn.{case}").scan().to_arrow().to_pylist() for case in cases}


def run_failure(settings: Settings, folder: Path, sql: str, functions: list[dict[str, Any]]) -> str:
    """The error of a run whose one step cannot apply its functions (the table is never created)."""
    write(folder, manifest("failing", {"failing": (sql, functions)}, collection="fn_failed"))
    result = materialize_all(build_definitions(settings, [folder]), raise_on_error=False)
    assert not result.success
    return failure_message(result)


def load_problems(folder: Path, sql: str, functions: list[dict[str, Any]]) -> list[str]:
    """What `flare validate` says of a step with these functions (no JVM)."""
    path = write(folder, manifest("checked", {"checked": (sql, functions)}))
    try:
        load_jobs([path], load_depots(DEMO_DEPOTS))
    except ManifestError as exc:
        return exc.problems
    return []
