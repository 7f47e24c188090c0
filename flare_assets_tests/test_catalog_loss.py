"""A lost catalog is loud: a run does not create a fresh table over an old one's files, and
`flare register` brings the table back. Each run is its own process, as Dagster runs are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets_tests.conftest import materialize_command
from flare_assets_tests.manifests import job, workflow, write

ROOT = Path(__file__).resolve().parent.parent

MANIFEST = workflow(
    "lost",
    job(
        steps=[{"name": "ids", "sql": "SELECT id FROM range(1, 6)"}],
        outputs=[
            {"name": "ids", "dataset": "dataos://lakehouse:lost/events", "options": {"saveMode": "append"}}
        ],
    ),
)


def env(settings: Settings, folder: Path) -> dict[str, str]:
    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "FLARE_PIPELINES": str(folder),
        "DAGSTER_HOME": str(dagster_home),
        "PYTHONPATH": str(ROOT),
        "FLARE_SPARK_MASTER": "local[1]",
    }


def materialize(settings: Settings, folder: Path) -> subprocess.CompletedProcess[str]:
    cmd = materialize_command("lakehouse/lost/events")
    return subprocess.run(cmd, capture_output=True, text=True, env=env(settings, folder), cwd=ROOT)


def ids(settings: Settings) -> list[int]:
    rows = load_catalog(settings=settings).load_table("lost.events").scan().to_arrow().to_pylist()
    return sorted(r["id"] for r in rows)


def test_a_lost_catalog_fails_the_next_write_and_flare_register_brings_the_table_back(
    settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, MANIFEST)
    first = materialize(settings, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert ids(settings) == [1, 2, 3, 4, 5]
    metadata = Path(settings.warehouse) / "lost" / "events" / "metadata"
    files_before = sorted(metadata.glob("*.metadata.json"))

    settings.sqlite_path.unlink()  # the catalog is lost; the table's files stay
    second = materialize(settings, tmp_path)
    assert second.returncode != 0
    output = second.stdout + second.stderr
    assert (
        "lakehouse.lost.events is not in the catalog, but its location already holds Iceberg metadata "
        f"({files_before[-1]})" in output
    )
    assert f"flare register lakehouse.lost.events {files_before[-1]}" in output
    assert sorted(metadata.glob("*.metadata.json")) == files_before  # no fresh table over the old one
    assert not load_catalog(settings=settings).table_exists("lost.events")

    register = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "register", "lakehouse.lost.events"],
        capture_output=True,
        text=True,
        env=env(settings, tmp_path),
    )
    assert register.returncode == 0, register.stderr
    assert register.stdout.startswith(
        f"registered lakehouse.lost.events from {files_before[-1]}: 1 snapshot(s), 5 row(s)"
    )
    assert ids(settings) == [1, 2, 3, 4, 5]
    table = load_catalog(settings=settings).load_table("lost.events")
    assert table.metadata_location.endswith(files_before[-1].name)


def test_flare_register_says_what_is_missing(settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "register", "nowhere.nothing"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("flare register: no Iceberg metadata in ")
