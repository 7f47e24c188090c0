"""Times the demo materialized through the Dagster CLI, as `flare demo` runs it, in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def demo_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLARE_", "DAGSTER_"))}
    env.update({"FLARE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **extra})
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    """Seconds `cmd` takes in a process of its own; its error output is raised if it fails."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return elapsed


def timed_demo(env: dict[str, str], skip_data: bool = True) -> float:
    cmd = [sys.executable, "-m", "flare_assets.cli", "demo"] + (["--skip-data"] if skip_data else [])
    return timed(cmd, env)


def generate_data(home: Path) -> None:
    env = demo_env(home)
    subprocess.run(
        [sys.executable, "-m", "flare_assets.cli", "demo-data"], env=env, check=True, capture_output=True
    )
