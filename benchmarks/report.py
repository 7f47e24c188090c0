"""bench-report.json: {"figures": {NAME: number}, "details": {NAME: {...}}, "commit": ..., ...},
and bench-report.png beside it: every figure against its goal."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks import chart

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench-report.json"
CHART = ROOT / "bench-report.png"


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def write(figures: dict[str, float], details: dict[str, Any], merge: bool = False) -> Path:
    """`merge` keeps the figures of benchmarks not run this time (a partial run)."""
    if merge and REPORT.exists():
        old = json.loads(REPORT.read_text())
        figures = {**old.get("figures", {}), **figures}
        details = {**old.get("details", {}), **details}
    report = {
        "figures": figures,
        "details": details,
        "commit": _commit(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }
    REPORT.write_text(json.dumps(report, indent=2, default=str) + "\n")
    chart.draw(figures, CHART)
    return REPORT
