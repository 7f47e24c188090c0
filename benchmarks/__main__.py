"""`python -m benchmarks [NAME ...]`: runs the benchmarks (all by default), prints each figure and
writes bench-report.json at the repository root."""

from __future__ import annotations

import argparse
import importlib
import json

from benchmarks import report

# module -> the figures it measures (names as in DESIGN.md)
BENCHMARKS = {
    "overhead": ["overhead_ratio"],
    "cluster_vs_local": ["cluster_vs_local_ratio"],
    "incremental": ["incremental_flatness"],
    "backfill": ["backfill_single_vs_multi"],
    "housekeeping": ["housekeeping_partition_reduction", "housekeeping_listing_speedup"],
    "maintenance": [
        "health_tick_100_tables_s",
        "compaction_file_reduction",
        "compaction_scan_speedup",
        "health_vs_blind_rewrite_ratio",
    ],
    "stream_latency": [
        "stream_latency_sensor_p50_s",
        "stream_latency_sensor_p95_s",
        "stream_latency_continuous_p50_s",
        "stream_latency_continuous_p95_s",
        "stream_rows_per_s",
        "stream_plain_rows_per_s",
        "stream_throughput_ratio",
    ],
    "concurrent_commits": ["concurrent_commits_lost"],
    "code_location": [
        "code_location_load_ratio",
        "run_overhead_500_manifests_ratio",
        "dagster_floor_load_ratio",
        "dagster_floor_run_ratio",
    ],
    "wide_write": ["wide_write_rows", "wide_write_vs_plain_ratio", "wide_write_peak_rss_mb"],
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(BENCHMARKS)} (default: all)")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; allowed: {', '.join(BENCHMARKS)}")
    figures: dict[str, float] = {}
    details: dict[str, object] = {}
    for name in args.names or BENCHMARKS:
        print(f"== {name}", flush=True)
        found, detail = importlib.import_module(f"benchmarks.{name}").measure()
        for key, value in found.items():
            print(f"{key} = {value}", flush=True)
        figures.update(found)
        details[name] = detail
    path = report.write(figures, details, merge=bool(args.names))
    print(json.dumps({"figures": figures}, indent=2))
    print(f"written: {path} and {report.CHART.name}")


if __name__ == "__main__":
    main()
