"""Reads committed table data with pyiceberg, no JVM: the last snapshot, a branch, or a snapshot id."""

from __future__ import annotations

from typing import Any

from pyiceberg.catalog import Catalog

from flare_assets.catalog import load_catalog
from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spec.address import parse_address


def table_identifier(name: str, settings: Settings) -> tuple[str, str]:
    """`collection.dataset`, `depot.collection.dataset` or a dataos:// address -> (depot, 'ns.table')."""
    if ":" in name:
        addr = parse_address(name)
        return addr.depot, addr.identifier
    parts = name.split(".")
    if len(parts) == 3:
        return parts[0], f"{parts[1]}.{parts[2]}"
    if len(parts) == 2:
        return load_depots(settings.depots).default_lakehouse, name
    raise ValueError(
        f"{name!r}: name a table as collection.dataset, depot.collection.dataset or dataos://depot:collection/dataset"
    )


def read_rows(
    name: str,
    branch: str | None = None,
    snapshot_id: int | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
    catalog: Catalog | None = None,
) -> list[dict[str, Any]]:
    settings = settings or Settings.from_env()
    depot, ident = table_identifier(name, settings)
    table = (catalog or load_catalog(depot, settings)).load_table(ident)
    if branch is not None:
        ref = table.metadata.refs.get(branch)
        if ref is None:
            raise ValueError(
                f"{name}: no branch or tag named {branch!r}; known: {', '.join(sorted(table.metadata.refs))}"
            )
        snapshot_id = ref.snapshot_id
    elif snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
        known = ", ".join(str(s.snapshot_id) for s in table.snapshots()[-5:])
        raise ValueError(f"{name}: no snapshot {snapshot_id}; the latest are {known}")
    scan = table.scan(snapshot_id=snapshot_id, limit=limit)
    return scan.to_arrow().to_pylist()
