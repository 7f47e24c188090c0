"""A read-only or missing FLARE_HOME is named in one line, by `flare` commands (no traceback) and by
a Dagster run (before any JVM starts). The read-only folder is a real read-only bind mount (in a
private mount namespace when running as root, whom file modes do not stop)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flare_assets.settings import HomeError, Settings
from flare_assets_tests.conftest import materialize_command

ROOT = Path(__file__).resolve().parent.parent
READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'


def _can_mount_privately() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


def run(cmd: list[str], home: Path, read_only: bool = False, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "FLARE_HOME": str(home), "PYTHONPATH": str(ROOT), **env}
    for key in ("FLARE_CATALOG_URI", "FLARE_WAREHOUSE", "FLARE_PIPELINES", "FLARE_DEPOTS"):
        environ.pop(key, None)
    if read_only:
        if os.geteuid() != 0:
            home.chmod(0o555)
        elif _can_mount_privately():
            cmd = ["unshare", "-rm", "sh", "-c", READ_ONLY, "sh", str(home), *cmd]
        else:
            pytest.skip("running as root without mount namespaces: no way to make a folder read-only")
    return subprocess.run(cmd, env=environ, capture_output=True, text=True, cwd=ROOT, timeout=600)


def flare(*args: str) -> list[str]:
    return [sys.executable, "-m", "flare_assets.cli", *args]


@pytest.mark.parametrize("args", [("query", "retail.orders"), ("health",), ("demo-data",)])
def test_read_only_home_is_named_without_traceback(tmp_path: Path, args: tuple[str, ...]) -> None:
    # before: `unable to open database file` (query, health) or an OSError traceback (demo-data)
    home = tmp_path / "home"
    home.mkdir()
    out = run(flare(*args), home, read_only=True)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        f"flare {args[0]}: FLARE_HOME {home} is read-only: runs keep their catalog, tables and state "
        "there; set FLARE_HOME to a writable folder"
    )


def test_missing_home_is_named(tmp_path: Path) -> None:
    # before: query created an empty catalog in the mistyped folder and said the table does not exist
    missing = tmp_path / "nowhere"
    out = run(flare("query", "retail.orders"), missing)
    assert (out.returncode, "Traceback" in out.stderr) == (1, False)
    assert out.stderr.startswith(f"flare query: FLARE_HOME {missing} does not exist")
    assert not missing.exists()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    out = run(flare("demo-data"), blocked / "home")
    assert (out.returncode, "Traceback" in out.stderr) == (1, False)
    assert out.stderr.strip() == (
        f"flare demo-data: FLARE_HOME {blocked / 'home'} does not exist and cannot be created: "
        "Not a directory; set FLARE_HOME to a writable folder"
    )


def test_dagster_run_in_read_only_home_names_it(tmp_path: Path) -> None:
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    home.mkdir()
    dagster_home.mkdir()
    cmd = materialize_command("lakehouse/retail/orders_enriched")
    out = run(cmd, home, read_only=True, DAGSTER_HOME=str(dagster_home))
    assert out.returncode != 0
    assert f"FLARE_HOME {home} is read-only" in out.stdout + out.stderr
    assert "unable to open database file" not in out.stdout + out.stderr


@pytest.mark.unit
def test_writable_home_is_created(tmp_path: Path) -> None:
    settings = Settings.from_env({"FLARE_HOME": str(tmp_path / "new" / "home")})
    assert settings.writable_home().is_dir()
    with pytest.raises(HomeError, match="does not exist: nothing has run there yet"):
        Settings.from_env({"FLARE_HOME": str(tmp_path / "other")}).existing_home()


def test_bad_setting_is_named_without_traceback(tmp_path: Path) -> None:
    out = run(flare("demo-data"), tmp_path / "home", FLARE_SPARK_CONF="spark.driver.memory")
    assert (out.returncode, "Traceback" in out.stderr) == (1, False)
    assert out.stderr.strip() == (
        "flare demo-data: FLARE_SPARK_CONF: expected key=value pairs separated by commas, "
        "got ['spark.driver.memory']"
    )
