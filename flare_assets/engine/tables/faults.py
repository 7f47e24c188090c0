"""Named points where the engine can be made to fail on purpose, to test what a crash leaves behind.

`FLARE_FAULT=<point>:<action>` (unset in normal runs): at that point the engine raises (`raise`) or
stops and waits to be killed (`hang`). Points: `stage-committed` (a merge's rows and markers are on
its private stage branch, the target branch is not yet fast-forwarded to it)."""

from __future__ import annotations

import os
import time


class InjectedFault(RuntimeError):
    """Raised at a fault point named by FLARE_FAULT."""


def fault_point(point: str) -> None:
    name, _, action = os.environ.get("FLARE_FAULT", "").partition(":")
    if name != point:
        return
    if action == "hang":
        while True:
            time.sleep(1)
    raise InjectedFault(f"fault injected at {point}")
