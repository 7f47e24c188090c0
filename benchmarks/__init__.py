"""Benchmarks: each figure is measured side by side in one run and written to bench-report.json."""
