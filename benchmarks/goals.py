"""The goals of DESIGN.md's benchmark figures: (comparison, value); figures without one are reported."""

from __future__ import annotations

import operator
from collections.abc import Callable

GOALS: dict[str, tuple[str, float]] = {
    "overhead_ratio": ("<=", 1.10),
    "incremental_flatness": ("<=", 1.2),
    "backfill_single_vs_multi": ("<=", 0.25),
    "stream_latency_sensor_p50_s": ("<=", 10),
    "stream_latency_continuous_p50_s": ("<=", 5),
    "compaction_file_reduction": (">=", 20),
    "compaction_scan_speedup": (">=", 2),
    "health_tick_100_tables_s": ("<", 2),
    "health_vs_blind_rewrite_ratio": ("<=", 0.5),
    "housekeeping_partition_reduction": (">=", 20),
    "housekeeping_listing_speedup": (">=", 10),
    "concurrent_commits_lost": ("==", 0),
    "stream_throughput_ratio": (">=", 0.9),
    "code_location_load_ratio": ("<=", 1.5),
    "run_overhead_500_manifests_ratio": ("<=", 1.1),
    "wide_write_rows": ("==", 10_000_000),
    "wide_write_vs_plain_ratio": ("<=", 1.1),
}

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}


def met(name: str, value: float) -> bool | None:
    """Whether the figure meets its goal; None when it has none."""
    if name not in GOALS:
        return None
    op, goal = GOALS[name]
    return _COMPARE[op](value, goal)
