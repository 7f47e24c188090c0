"""The Dagster UI in a real browser: the demo materialized through Dagster, `dagster dev` on loopback
with the demo's workspace, Debian's Chromium driven headless by Playwright. The asset graph and an
asset's page show the metadata, column tags and checks; a run launched through GraphQL, as the UI's
Materialize button does, succeeds. Screenshots go to the test's output folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flare_assets.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCATION = "flare_assets"
ASSET = ["lakehouse", "retail", "orders_enriched"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make setup)"),
]

LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}"""
LATEST_MATERIALIZATION = """
query Latest($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 1) { timestamp } }
  }
}
"""
LOCATIONS = """
query Locations {
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } }
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


@pytest.fixture(scope="module")
def demo_env(flare_home: Path) -> dict[str, str]:
    """The demo materialized through Dagster (as `flare demo` does) into a Dagster home of its own."""
    dagster_home = flare_home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")  # the instance `make dev` uses
    env = {**os.environ, "FLARE_HOME": str(flare_home), "DAGSTER_HOME": str(dagster_home)}
    done = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "demo"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return env


@pytest.fixture(scope="module")
def webserver(demo_env: dict[str, str], flare_home: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (flare_home / "dagster-dev.log").open("w")
    # `dagster dev`, as `make dev`: the webserver, and the daemon that starts queued runs
    exe = Path(sys.executable).parent / "dagster"
    proc = subprocess.Popen(
        [str(exe), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        env=demo_env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (flare_home / "dagster-dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dagster dev did not load the code location in 180 s"
            try:
                entries = _graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]
            except OSError:
                entries = []
            loaded = [e for e in entries if e["name"] == LOCATION and e["loadStatus"] == "LOADED"]
            if loaded:
                assert loaded[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", loaded
                break
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a new, empty --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def _open(page: Any, url: str) -> None:
    """Opens a UI page, past the first-visit newsletter dialog when it shows."""
    page.goto(url)
    page.wait_for_load_state("networkidle")
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()


def _shows(page: Any, text: str, timeout: float = 90_000) -> None:
    page.get_by_text(text, exact=False).filter(visible=True).first.wait_for(timeout=timeout)


def test_asset_graph_and_asset_page_show_metadata_column_tags_and_checks(
    webserver: str, page: Any, tmp_path: Path
) -> None:
    _open(page, f"{webserver}/locations/{LOCATION}/asset-groups/retail")
    for text in ("orders_enriched", "customer_revenue", "6 / 6 Passed", "1 / 1 Passed"):
        _shows(page, text)
    page.screenshot(path=str(tmp_path / "asset-graph.png"), full_page=True)

    table = load_catalog().load_table("retail.orders_enriched")
    snapshot_id = str(table.current_snapshot().snapshot_id)
    asset = f"{webserver}/assets/{'/'.join(ASSET)}"

    # the health sensor records observations too: open the latest materialization itself
    (latest,) = _graphql(webserver, LATEST_MATERIALIZATION, {"key": {"path": ASSET}})["assetOrError"][
        "assetMaterializations"
    ]
    _open(page, f"{asset}?view=events&time={latest['timestamp']}")
    _shows(page, "rows_written")
    page.screenshot(path=str(tmp_path / "asset-events.png"), full_page=True)
    for text in ("write_mode", "added_data_files", "snapshot_id", snapshot_id):
        _shows(page, text)

    _open(page, f"{asset}?view=overview")
    for text in ("customer_name", "PII.Name", "finance", "decimal(12,2)"):
        _shows(page, text)
    page.screenshot(path=str(tmp_path / "asset-overview.png"), full_page=True)

    _open(page, f"{asset}?view=checks")
    for text in ("order_id_unique", "amount_1", "Succeeded"):
        _shows(page, text)
    page.screenshot(path=str(tmp_path / "asset-checks.png"), full_page=True)
    assert all((tmp_path / f"{n}.png").stat().st_size > 10_000 for n in ("asset-graph", "asset-checks"))


def test_a_run_launched_through_graphql_succeeds(webserver: str, page: Any, tmp_path: Path) -> None:
    before = load_catalog().load_table("reporting.city_revenue").current_snapshot().snapshot_id
    params = {
        "mode": "default",
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/from_ui", "value": "true"}]},
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": ["lakehouse", "reporting", "city_revenue"]}],
        },
    }
    launched = _graphql(webserver, LAUNCH, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline, status = time.monotonic() + 300, "QUEUED"
    while status not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
        time.sleep(2)
        status = _graphql(webserver, RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
    assert status == "SUCCESS", f"run {run_id} ended {status}"  # QUEUED: the daemon did not start it

    after = load_catalog().load_table("reporting.city_revenue").current_snapshot()
    assert after.snapshot_id != before and int(after.summary["total-records"]) == 8
    _open(page, f"{webserver}/runs/{run_id}")
    _shows(page, "Success")
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
