"""code_location_load_ratio: loading the code location (importing flare_assets.definitions in a fresh
process, as every Dagster run, sensor and schedule tick does) with 500 manifests (1,000 assets)
against 1, measured side by side in alternating rounds."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from flare_assets.settings import DEMO_DIR

ROUNDS = 3
COPIES = 500


def copies(folder: Path, n: int) -> Path:
    """`n` copies of the demo's retail workflow, each writing its own two tables."""
    doc = yaml.safe_load((DEMO_DIR / "pipelines" / "retail.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        copy = yaml.safe_load(yaml.safe_dump(doc))
        copy["name"] = f"retail-{i:04d}"
        for dag in copy["workflow"]["dag"]:
            for out in dag["spec"]["stackSpec"]["job"]["outputs"]:
                out["dataset"] = out["dataset"].replace("lakehouse:retail/", f"lakehouse:retail_{i:04d}/")
        (folder / f"retail_{i:04d}.yaml").write_text(yaml.safe_dump(copy, sort_keys=False))
    return folder


def load_seconds(pipelines: Path, home: Path) -> float:
    env = {**os.environ, "FLARE_PIPELINES": str(pipelines), "FLARE_HOME": str(home)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import flare_assets.definitions"], env=env, check=True)
    return time.perf_counter() - start


def measure() -> tuple[dict[str, float], dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one, many = copies(root / "one", 1), copies(root / "many", COPIES)
        load_seconds(one, root / "home")  # warm the file cache and any first-load state
        small, large = [], []
        for r in range(ROUNDS):
            order = [(one, small), (many, large)] if r % 2 == 0 else [(many, large), (one, small)]
            for folder, times in order:
                times.append(load_seconds(folder, root / "home"))
    ratio = statistics.median(large) / statistics.median(small)
    details = {"one_s": small, f"{COPIES}_s": large, "assets": 2 * COPIES}
    return {"code_location_load_ratio": round(ratio, 2)}, details
