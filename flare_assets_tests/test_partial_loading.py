"""One broken manifest never takes the others down: it is reported by `flare validate`, in the code
location's log and as a failing asset in the UI, while every valid manifest loads. Only YAML that
declares a Flare workflow is a manifest. FLARE_STRICT=true keeps fail-all. No Spark here."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, materialize

from flare_assets.defs.build import build_definitions
from flare_assets.settings import Settings
from flare_assets.spec.errors import ManifestError
from flare_assets_tests.conftest import DEMO_DEPOTS
from flare_assets_tests.manifests import write
from flare_assets_tests.test_spec import good

DEMO_PIPELINES = DEMO_DEPOTS.parent / "pipelines"

COMPOSE = """
services:
  web:
    image: nginx
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FLARE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLARE_STRICT", raising=False)
    monkeypatch.delenv("FLARE_DEPOTS", raising=False)
    return Settings.from_env()


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pipelines"
    write(folder, good("append", "good", "good"), "good")
    write(folder, good("upsert", "bad", "bad"), "bad-copy")
    (folder / "docker-compose.yml").write_text(COMPOSE)
    # a backup copy in a subfolder: same workflow, same output as the file it copies
    write(folder / "old", good("append", "good", "good"), "good")
    return folder


@pytest.mark.unit
def test_broken_manifest_leaves_the_others_loaded(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # before: any one of these files made build_definitions raise, and no asset loaded
    folder = _folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="flare_assets"):
        defs = build_definitions(settings, [folder])
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert AssetKey(["lakehouse", "good", "things"]) in keys
    assert AssetKey(["lakehouse", "bad", "things"]) not in keys
    assert {k for k in keys if k.path[0] == "manifest_errors"} == {
        AssetKey(["manifest_errors", "bad_copy"]),
        AssetKey(["manifest_errors", "old_good"]),
    }
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert (
        "WARNING",
        f"{folder / 'docker-compose.yml'}: not a Flare manifest (no `type: workflow`); ignored",
    ) in logged
    assert any(
        level == "ERROR" and "bad-copy.yaml: workflow.dag[0]" in m and "'upsert'" in m for level, m in logged
    )
    # the copy in old/ is the duplicate, the file at the top stays
    assert any(
        level == "ERROR" and m.startswith(f"{folder / 'old' / 'good.yaml'}: name: workflow 'good'")
        for level, m in logged
    )


@pytest.mark.unit
def test_broken_manifest_asset_shows_and_fails_with_its_problems(settings: Settings, tmp_path: Path) -> None:
    defs = build_definitions(settings, [_folder(tmp_path)])
    graph = defs.resolve_asset_graph()
    node = graph.get(AssetKey(["manifest_errors", "bad_copy"]))
    assert node.group_name == "bad"
    assert "saveMode: got 'upsert'; allowed: append, overwrite" in (node.description or "")
    (broken,) = [
        a for a in defs.assets or [] if AssetKey(["manifest_errors", "bad_copy"]) in getattr(a, "keys", ())
    ]
    result = materialize([broken], raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "saveMode: got 'upsert'" in failure.step_failure_data.error.message


@pytest.mark.unit
def test_strict_keeps_fail_all(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        build_definitions(dataclasses.replace(settings, strict=True), [_folder(tmp_path)])
    assert any("'upsert'" in p for p in info.value.problems)
    assert Settings.from_env({"FLARE_STRICT": "true"}).strict


def test_validate_reports_broken_and_ignores_other_yaml(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "validate", str(folder)], capture_output=True, text=True
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert (
        f"warning: {folder / 'docker-compose.yml'}: not a Flare manifest (no `type: workflow`); ignored"
        in lines
    )
    assert any(line.startswith(f"{folder / 'bad-copy.yaml'}: workflow.dag[0]") for line in lines)
    assert "Traceback" not in out.stderr
    (folder / "bad-copy.yaml").unlink()
    (folder / "old" / "good.yaml").unlink()
    ok = subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "validate", str(folder)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: 1 manifest(s)")


@pytest.mark.unit
def test_unparsable_file_that_declares_a_workflow_is_broken(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "pipelines"
    write(folder, good("append", "good", "good"), "good")
    (folder / "half.yaml").write_text("version: v1\ntype: workflow\nname: [unclosed\n")
    (folder / "notes.yaml").write_text("just: [unclosed\n")
    defs = build_definitions(settings, [folder])
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert AssetKey(["manifest_errors", "half"]) in keys
    assert AssetKey(["manifest_errors", "notes"]) not in keys
    assert AssetKey(["lakehouse", "good", "things"]) in keys


@pytest.mark.unit
def test_two_writers_of_one_output_break_the_later_file(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "pipelines"
    write(folder, good("append", "first", "same"), "a_first")
    write(folder, good("append", "second", "same"), "b_second")
    defs = build_definitions(settings, [folder])
    graph = defs.resolve_asset_graph()
    node = graph.get(AssetKey(["manifest_errors", "b_second"]))
    assert "dataos://lakehouse:same/things (asset lakehouse/same/things) is already written by" in (
        node.description or ""
    )
    assert graph.get(AssetKey(["lakehouse", "same", "things"])).group_name == "first"


def test_demo_manifests_all_load(settings: Settings) -> None:
    defs = build_definitions(settings, [DEMO_PIPELINES])
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert not [k for k in keys if k.path[0] == "manifest_errors"]
