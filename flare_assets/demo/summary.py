"""The demo's closing summary: per output table, rows, snapshots and data files read through
pyiceberg, and its asset checks' latest outcomes from the Dagster instance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster import AssetCheckKey, AssetKey, DagsterInstance

from flare_assets.catalog import load_catalog
from flare_assets.depots import DepotMap
from flare_assets.settings import Settings


@dataclass
class TableSummary:
    name: str
    rows: int | None
    snapshots: int
    files: int
    checks_passed: int
    checks: int
    snapshot_id: int | None


def check_outcomes(dagster_home: Path, keys: list[AssetCheckKey]) -> dict[AssetCheckKey, bool]:
    """Whether each check's latest evaluation passed (checks never evaluated are left out)."""
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {
        k: r.status.value == "SUCCEEDED"
        for k, r in latest.items()
        if r.status.value in ("SUCCEEDED", "FAILED")
    }


def summarize(
    keys: list[AssetKey], checks: dict[AssetCheckKey, bool], depots: DepotMap, settings: Settings
) -> list[TableSummary]:
    out = []
    for key in sorted(keys, key=lambda k: k.path):
        depot, *ident = key.path
        mine = [passed for c, passed in checks.items() if c.asset_key == key]
        if depots.depots[depot].type != "iceberg":  # syndication: a folder of files
            root = settings.resolve(depots.depots[depot].path or depot).joinpath(*ident)
            files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
            out.append(TableSummary(".".join(key.path), None, 0, len(files), sum(mine), len(mine), None))
            continue
        catalog = load_catalog(depot, settings)
        if not catalog.table_exists(".".join(ident)):  # nothing written yet (a stream with no files)
            out.append(TableSummary(".".join(key.path), None, 0, 0, sum(mine), len(mine), None))
            continue
        table = catalog.load_table(".".join(ident))
        snap = table.current_snapshot()
        summary = snap.summary if snap and snap.summary else None
        out.append(
            TableSummary(
                name=".".join(key.path),
                rows=int(summary["total-records"]) if summary else 0,
                snapshots=len(table.snapshots()),
                files=int(summary["total-data-files"]) if summary else 0,
                checks_passed=sum(mine),
                checks=len(mine),
                snapshot_id=snap.snapshot_id if snap else None,
            )
        )
    return out


def render(rows: list[TableSummary]) -> str:
    head = f"{'table':40} {'rows':>8} {'snapshots':>9} {'files':>6} {'checks':>7} {'snapshot id':>20}"
    lines = [head]
    for r in rows:
        checks = f"{r.checks_passed}/{r.checks}" if r.checks else "-"
        rows_ = "-" if r.rows is None else str(r.rows)
        sid = "-" if r.snapshot_id is None else str(r.snapshot_id)
        lines.append(f"{r.name:40} {rows_:>8} {r.snapshots:>9} {r.files:>6} {checks:>7} {sid:>20}")
    total_checks = sum(r.checks for r in rows)
    lines.append(
        f"{len(rows)} tables, {sum(r.rows or 0 for r in rows)} rows, {sum(r.snapshots for r in rows)} "
        f"snapshots, {sum(r.files for r in rows)} files, "
        f"{sum(r.checks_passed for r in rows)}/{total_checks} checks passed"
    )
    return "\n".join(lines)
