"""What a Dagster CLI run is doing, as it happens: its step, materialization and check events as
short lines, instead of the full event log (kept for the error report)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import deque
from typing import TextIO

# Dagster's console log line: ... - JOB - RUN_ID - PID - [STEP_KEY - ]EVENT_TYPE - message
SHOWN = {
    "STEP_START": "running {step}",
    "ASSET_MATERIALIZATION": "materialized {asset}",
    "ASSET_CHECK_EVALUATION": "{message}",
    "STEP_SUCCESS": "done {step}",
    "STEP_FAILURE": "FAILED {step}: {message}",
    "RUN_FAILURE": "run failed: {message}",
}


def progress_line(line: str) -> str | None:
    """The short form of one of Dagster's event log lines, or None for lines not shown."""
    parts = line.rstrip().split(" - ")
    for i, part in enumerate(parts):
        if part in SHOWN and i >= 6:
            step = parts[i - 1] if i >= 7 else ""
            message = " - ".join(parts[i + 1 :])
            asset = message.removeprefix("Materialized value ").rstrip(".").replace(" ", "/")
            took = message.rsplit(" in ", 1)[-1].rstrip(".") if part == "STEP_SUCCESS" else ""
            text = SHOWN[part].format(step=step, message=message, asset=asset)
            return f"{text} in {took}" if took else text
    return None


def run(
    cmd: list[str], env: dict[str, str], out: TextIO = sys.stdout, verbose: bool = False
) -> tuple[int, str]:
    """Runs `cmd`, printing a progress line per event (every line when `verbose`); returns the exit
    code and the output's last lines."""
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=200)
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        last = None
        for line in proc.stdout:
            tail.append(line)
            shown = line.rstrip() if verbose else progress_line(line)
            if shown and shown != last:  # a backfill materializes one asset once per partition
                print(f"  [{time.monotonic() - start:6.1f}s] {shown}", file=out, flush=True)
            last = shown or last
    return proc.returncode, "".join(tail)
