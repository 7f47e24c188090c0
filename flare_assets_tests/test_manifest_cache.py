"""The manifest cache (spec/cache.py): a warm load gives the same jobs as a fresh one, an edited file
is parsed again, a corrupt entry is rebuilt, and files using `${VAR}` are never stored. No Spark."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spec.loader import Loaded, load_manifests
from flare_assets_tests.conftest import DEMO_DEPOTS

DEMO_PIPELINES = DEMO_DEPOTS.parent / "pipelines"


def shape(loaded: Loaded) -> dict[str, object]:
    return {
        "jobs": {lj.name: (str(lj.file), lj.manifest.model_dump(mode="json")) for lj in loaded.jobs},
        "broken": {str(f): p for f, p in loaded.broken.items()},
        "ignored": loaded.ignored,
        "workflows": {str(f): n for f, n in loaded.workflows.items()},
    }


def load(folder: Path, cache: Path | None) -> Loaded:
    return load_manifests([folder], load_depots(DEMO_DEPOTS), lambda _: False, cache)


def entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.pickle"))


@pytest.fixture
def pipelines(tmp_path: Path) -> Path:
    folder = tmp_path / "pipelines"
    shutil.copytree(DEMO_PIPELINES, folder)
    (folder / "broken.yaml").write_text("version: v1\nname: broken\ntype: workflow\nworkflow: {dag: 3}\n")
    (folder / "compose.yaml").write_text("services: {db: {image: postgres}}\n")
    return folder


def test_warm_load_gives_the_jobs_of_a_fresh_load(pipelines: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fresh = shape(load(pipelines, None))
    assert fresh["jobs"] and fresh["broken"] and fresh["ignored"]
    assert shape(load(pipelines, cache)) == fresh  # cold: computed and stored
    stored = entries(cache)
    assert len(stored) == len(list(pipelines.glob("*.yaml")))
    assert shape(load(pipelines, cache)) == fresh  # warm: read back
    assert entries(cache) == stored


def test_an_edited_file_is_parsed_again(pipelines: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = load(pipelines, cache).broken[pipelines / "broken.yaml"]
    retail = pipelines / "retail.yaml"
    retail.write_text(retail.read_text().replace("title: Retail ingest", "title: Retail ingest, edited"))
    (pipelines / "broken.yaml").write_text("version: v1\nname: broken\ntype: workflow\nworkflow: {dag: []}\n")
    warm = load(pipelines, cache)
    assert shape(warm) == shape(load(pipelines, None))
    titles = {lj.manifest.workflow.title for lj in warm.jobs if lj.manifest.name == "retail"}
    assert titles == {"Retail ingest, edited"}
    assert warm.broken[pipelines / "broken.yaml"] != before
    assert "at least 1 item" in warm.broken[pipelines / "broken.yaml"][0]


def test_a_corrupt_entry_is_ignored_and_rebuilt(pipelines: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fresh = shape(load(pipelines, None))
    load(pipelines, cache)
    stored = entries(cache)
    for i, entry in enumerate(stored):  # garbage, a truncated pickle, an empty file
        data = entry.read_bytes()
        entry.write_bytes([b"not a pickle", data[: len(data) // 2], b""][i % 3])
    assert shape(load(pipelines, cache)) == fresh
    assert entries(cache) == stored
    assert shape(load(pipelines, cache)) == fresh


def test_an_unwritable_cache_only_costs_time(pipelines: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    assert shape(load(pipelines, blocked / "cache")) == shape(load(pipelines, None))


def test_files_using_variables_are_not_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    text = (DEMO_PIPELINES / "retail.yaml").read_text()
    (folder / "retail.yaml").write_text(text.replace("title: Retail ingest", "title: ${RETAIL_TITLE}"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("RETAIL_TITLE", "first")
    assert {lj.manifest.workflow.title for lj in load(folder, cache).jobs} == {"first"}
    monkeypatch.setenv("RETAIL_TITLE", "second")
    assert {lj.manifest.workflow.title for lj in load(folder, cache).jobs} == {"second"}
    assert entries(cache) == []


def test_the_cache_lives_under_flare_home_and_can_be_turned_off(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert Settings.from_env({"FLARE_HOME": str(home)}).manifest_cache == home / "cache" / "manifests"
    off = Settings.from_env({"FLARE_HOME": str(home), "FLARE_MANIFEST_CACHE": "off"})
    assert off.manifest_cache is None
    elsewhere = Settings.from_env({"FLARE_HOME": str(home), "FLARE_MANIFEST_CACHE": str(tmp_path / "c")})
    assert elsewhere.manifest_cache == tmp_path / "c"
